"""``requirements.lock``: a model environment's whole dependency set, pinned, every package with its hashes.

``requirements.txt`` pins what the data scientist chose; the ~80 packages those bring are pinned by nothing, and
a package index (or anyone between it and the runner) could hand the environment other files. The lock pins every
package of ``requirements-dev.txt`` (the environment tests, training and serving run in), and the build backend of
each of the repository's own projects (``shared/``: hatchling), to one version and the sha256 of its wheels. The
environment is installed from it in hash-checking mode, wheels only (nothing is built from an sdist, so no build
backend comes from the index), with no dependency resolution and no installer configuration from the model
folder; then the repository's own projects with ``--no-deps --no-build-isolation`` (built by the locked backend).

Two ways to lock, by what installs the environment:

- ``uv pip compile --universal --generate-hashes --only-binary :all:``: every platform's markers, for Python
  :data:`LOCK_PYTHON` and later, every wheel of each version hashed (a Mac and a Linux runner install from the
  same lock);
- models with ``torch``: pip's own resolution (``pip install --dry-run --report``), which is what installs them
  (uv would take a CUDA build of several GB from the index instead of the CPU build the machine provides);
  the hashes are those of the wheels pip picked, so that lock is for the platform it was made on (its first line
  says which, and it is refused elsewhere).

The first line records a digest of the inputs (every requirements and constraints file, the dependencies and build
requirements each local project declares, the Python the lock is for) and one of the lock's own body. A lock whose
inputs changed is stale; a body that is not the one ``modelctl lock`` wrote, a line that is not a hashed pin, or a
pin of ``requirements.txt`` the body does not hold make the lock invalid; nothing installs from either.

Standard library only: toxfile.py reads locks before any environment exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelctl import requirements

LOCK = "requirements.lock"
SOURCE = "requirements-dev.txt"
LOCK_PYTHON = "3.11"  # the oldest Python the repository supports: a universal lock covers it and every later one
ALLOW_UNLOCKED = "MODELCTL_ALLOW_UNLOCKED"  # "1": build a model environment without a lock (test suites)
_BUILD_INPUT = ".modelctl-build-requirements.txt"  # written beside requirements-dev.txt while locking
_HEADER = re.compile(r"^# modelctl lock: inputs sha256 ([0-9a-f]{64}); body sha256 ([0-9a-f]{64}) \(([^)]*)\)$")
_INDEX_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--no-index")
_CONSTRAINT = re.compile(r"^(?:-c|--constraint)(?:\s+|=)(\S+)$")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


class LockError(RuntimeError):
    """A lock that cannot be made or used (the message names the model folder and what to do)."""


@dataclass(frozen=True)
class Status:
    state: str  # "current", "stale", "missing" or "invalid"
    path: Path
    packages: int = 0
    reason: str = ""

    @property
    def message(self) -> str:
        shown, name = f"{self.path.parent.name}/{LOCK}", self.path.parent.name
        if self.state == "missing":
            return f"{shown} is missing: run `modelctl lock {name}`"
        if self.state == "stale":
            return (
                f"{shown} is out of date ({self.reason or 'its requirements changed since it was made'}): "
                f"run `modelctl lock {name}`"
            )
        if self.state == "invalid":
            return f"{shown} cannot be used: {self.reason}; run `modelctl lock {name}` (never edit it by hand)"
        return f"{shown}: {self.packages} packages, every one with its hashes"


def _lines(folder: Path) -> list[requirements.Line]:
    try:
        return requirements.read(folder / SOURCE)
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{folder.name}: cannot read its requirements ({exc})") from None
    except ValueError as exc:
        raise LockError(f"{folder.name}: {exc}") from None


def uses_torch(folder: Path) -> bool:
    """Whether the environment installs torch (then pip, not uv, installs it: see the module doc)."""
    return any(line.name == "torch" for line in _lines(folder))


def project_of(line: requirements.Line) -> Path:
    """The folder of a local project line (``-e ../../shared``, ``./pkg[extra]``), extras left out."""
    target = re.sub(r"\[[^\]]*\]$", "", line.target.strip())
    return (line.source.parent / Path(target).expanduser()).resolve()


def _pyproject(project: Path) -> dict[str, object]:
    try:
        data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}
    return data


def build_requirements(folder: Path) -> list[str]:
    """What the repository's own projects need to be built (their ``[build-system] requires``)."""
    needed: list[str] = []
    for line in _lines(folder):
        if line.is_local:
            system = _pyproject(project_of(line)).get("build-system", {})
            system = system if isinstance(system, dict) else {}
            requires = system.get("requires", [])
            wanted = [str(r) for r in requires] if isinstance(requires, list) else []
            if line.kind == "editable" and system.get("build-backend") == "hatchling.build":
                wanted.append("editables")  # what hatchling asks for to build an editable wheel
            needed += [r for r in wanted if r not in needed]
    return needed


def inputs_digest(folder: Path) -> str:
    """sha256 of what the lock is made from: the bytes of every requirements file read (``-r`` followed) and of
    every constraints file (``-c``), and what each local project declares it needs (dependencies, the optional
    dependencies of the extras the line asks for, build requirements), for Python :data:`LOCK_PYTHON`."""
    digest = hashlib.sha256(f"python {LOCK_PYTHON}\n".encode())
    lines = _lines(folder)
    files = sorted({line.source for line in lines} | {(folder / SOURCE).resolve()})
    for line in lines:
        constraint = _CONSTRAINT.match(line.text) if line.kind == "option" else None
        if constraint:
            files.append((line.source.parent / constraint.group(1)).resolve())
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            data = b"\0missing"
        digest.update(f"{path.name}\n".encode() + data + b"\0")
    for line in lines:
        if line.is_local:
            declared = _pyproject(project_of(line))
            project = declared.get("project", {})
            project = project if isinstance(project, dict) else {}
            extras = re.findall(r"\[([^\]]*)\]$", line.target.strip())
            groups = project.get("optional-dependencies", {})
            groups = groups if isinstance(groups, dict) else {}
            needs = {
                "dependencies": project.get("dependencies", []),
                "extras": {e.strip(): groups.get(e.strip()) for e in (extras[0].split(",") if extras else [])},
                "build": declared.get("build-system", {}),
            }
            digest.update(f"{line.kind}:{project_of(line).name}:{json.dumps(needs, sort_keys=True)}\n".encode())
    return digest.hexdigest()


def _body_digest(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _platform() -> str:
    return f"pip {sys.platform} cp{sys.version_info.major}{sys.version_info.minor}"


def status(folder: Path) -> Status:
    """Whether ``folder/requirements.lock`` may be installed from (see the module doc for each state)."""
    path = folder / LOCK
    if not path.is_file():
        return Status("missing", path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return Status("invalid", path, reason=f"it cannot be read ({type(exc).__name__})")
    first, _, rest = text.partition("\n")
    header = _HEADER.match(first)
    if header is None:
        return Status("invalid", path, reason="its first line is not the header `modelctl lock` writes")
    try:
        digest = inputs_digest(folder)
    except LockError as exc:
        return Status("invalid", path, reason=str(exc))
    if header.group(1) != digest:
        return Status("stale", path, reason=f"{SOURCE}, a file it includes or a local project's needs changed")
    body = rest.split("\n", 2)[2] if rest.count("\n") >= 2 else ""
    if header.group(2) != _body_digest(body):
        return Status("invalid", path, reason="its packages are not the ones `modelctl lock` wrote (edited by hand?)")
    how = header.group(3)
    if how.startswith("pip ") and how != _platform():
        return Status("invalid", path, reason=f"it was made by pip for {how[4:]}; this machine is {_platform()[4:]}")
    try:
        pins = check_hashes(text, path)
        _check_direct_pins(folder, pins)
    except LockError as exc:
        return Status("invalid", path, reason=str(exc).removeprefix(f"{path}: "))
    return Status("current", path, len(pins))


def check_hashes(text: str, where: Path) -> list[tuple[str, str]]:
    """The (name, version) pins of a lock whose every requirement is ``name==version [; marker]`` with its
    hashes, and nothing else (no option, path or URL line); LockError naming the first line that is not."""
    pins: list[tuple[str, str]] = []
    logical = re.sub(r"\\\n", " ", text)
    for number, line in enumerate(logical.splitlines(), 1):
        line = " ".join(re.sub(r"(^|\s)#.*$", "", line).split())
        if not line:
            continue
        pin = _PIN.match(line)
        rest = line[pin.end() :].strip() if pin else ""
        marker, _, hashes = rest.partition("--hash=") if not rest.startswith("--hash=") else ("", "", rest[7:])
        hashes_ok = bool(hashes) and re.fullmatch(r"sha256:[0-9a-f]{64}( --hash=sha256:[0-9a-f]{64})*", hashes)
        marker_ok = not marker.strip() or re.fullmatch(r";[^#\\]*", marker.strip())
        if pin is None or not hashes_ok or not marker_ok or "://" in line:
            raise LockError(f"{where}: line {number} is not a pinned package with its hashes ({line[:80]!r})")
        pins.append((pin.group(1).lower().replace("_", "-"), pin.group(2)))
    return pins


def _check_direct_pins(folder: Path, pins: list[tuple[str, str]]) -> None:
    """Every ``name==version`` of the requirements is in the lock at that version."""
    locked = {(name.replace(".", "-"), version) for name, version in pins}
    for line in _lines(folder):
        pin = _PIN.match(re.sub(r"\[[^\]]*\]", "", line.target)) if line.kind == "package" else None
        if pin and ";" not in line.target:
            name = pin.group(1).lower().replace("_", "-").replace(".", "-")
            if (name, pin.group(2)) not in locked:
                raise LockError(f"{line.source.name} pins {pin.group(1)}=={pin.group(2)}, which the lock does not")


def _refuse_unlockable(folder: Path) -> None:
    root = folder.resolve().parents[1]
    for line in _lines(folder):
        where = f"{line.source.name}: {line.text!r}"
        if line.kind == "url" or (line.kind == "package" and " @ " in line.target):
            raise LockError(f"{folder.name}: {where} installs from a URL, which cannot be locked; pin a package")
        if line.kind == "editable" and not line.is_local:
            raise LockError(f"{folder.name}: {where} installs from a URL, which cannot be locked; pin a package")
        if line.is_local and not project_of(line).is_relative_to(root):
            raise LockError(f"{folder.name}: {where} is a project outside the repository ({project_of(line)})")
        if line.kind == "option" and not (line.text.startswith(_INDEX_OPTIONS) or _CONSTRAINT.match(line.text)):
            raise LockError(
                f"{folder.name}: {where}: only index options (--index-url, --extra-index-url, --find-links) and "
                "constraints (-c) can be locked"
            )


def make(folder: Path, uv: str, env: Mapping[str, str], timeout: float = 900) -> Status:
    """Write ``folder/requirements.lock`` (atomically) and return its status."""
    _refuse_unlockable(folder)
    digest = inputs_digest(folder)
    build = build_requirements(folder)
    if uses_torch(folder):
        how, body = _platform(), _pip_lock(folder, build, env, timeout)
    else:
        how, body = f"uv universal py{LOCK_PYTHON}", _uv_lock(folder, build, uv, env, timeout)
    text = (
        f"# modelctl lock: inputs sha256 {digest}; body sha256 {_body_digest(body)} ({how})\n"
        f"# Made by `modelctl lock {folder.name}` from {SOURCE} and the build requirements of its local projects;\n"
        "# do not edit. The environment installs exactly these wheels (hash-checked, no resolution, nothing built).\n"
        f"{body}"
    )
    check_hashes(text, folder / LOCK)
    fd, tmp = tempfile.mkstemp(prefix=".requirements.lock.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, folder / LOCK)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return status(folder)


def _run(argv: list[str], folder: Path, env: Mapping[str, str], timeout: float, what: str) -> str:
    try:
        done = subprocess.run(
            argv, cwd=folder, env=dict(env), capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise LockError(f"{folder.name}: {what} took more than {timeout:.0f} s") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise LockError(f"{folder.name}: {what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _with_build_input(folder: Path, build: list[str]) -> Path:
    path = folder / _BUILD_INPUT
    path.write_text("".join(f"{r}\n" for r in build), encoding="utf-8")
    return path


def _uv_lock(folder: Path, build: list[str], uv: str, env: Mapping[str, str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="modelctl-lock-") as tmp:
        out = Path(tmp) / LOCK
        argv = [uv, "pip", "compile", "--no-config", SOURCE, _BUILD_INPUT, "--universal", "--generate-hashes"]
        argv += ["--only-binary", ":all:", "--python-version", LOCK_PYTHON, "--no-header", "--quiet"]
        argv += ["--output-file", str(out)]
        _with_build_input(folder, build)
        try:
            _run(argv, folder, env, timeout, "uv pip compile")
        finally:
            (folder / _BUILD_INPUT).unlink(missing_ok=True)
        compiled = out.read_text(encoding="utf-8")
    # Drop the local projects (-e ../../shared): installed from the checkout after the lock, --no-deps.
    kept: list[str] = []
    dropping = False
    for line in compiled.splitlines():
        if line.startswith(("-e ", "--editable", "./", "../", "/")):
            dropping = True  # with its "# via" annotation lines
        elif not (dropping and line.lstrip().startswith("#")):
            dropping = False
            kept.append(line)
    return "\n".join(kept).strip("\n") + "\n"


def _pip_lock(folder: Path, build: list[str], env: Mapping[str, str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="modelctl-lock-") as tmp:
        venv = Path(tmp) / "venv"
        _run([sys.executable, "-m", "venv", str(venv)], folder, env, timeout, "python -m venv")
        report = Path(tmp) / "report.json"
        argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        argv += ["--disable-pip-version-check", "--only-binary", ":all:", "--report", str(report)]
        argv += ["-r", SOURCE, "-r", _BUILD_INPUT]
        _with_build_input(folder, build)
        try:
            _run(argv, folder, env, timeout, "pip install --dry-run --report")
        finally:
            (folder / _BUILD_INPUT).unlink(missing_ok=True)
        data = json.loads(report.read_text(encoding="utf-8"))
    lines = []
    for item in sorted(data.get("install", []), key=lambda i: str(i["metadata"]["name"]).lower()):
        info = item.get("download_info", {})
        if info.get("dir_info") is not None:
            continue  # a local project of the repository
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        sha = info.get("archive_info", {}).get("hashes", {}).get("sha256")
        if not sha:
            raise LockError(f"{folder.name}: pip reports no sha256 for {name}=={version} ({info.get('url', '?')})")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{sha}")
    if not lines:
        raise LockError(f"{folder.name}: pip resolved no package from {SOURCE}")
    return "\n".join(lines) + "\n"
