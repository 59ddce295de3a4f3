"""``requirements.lock``: a model environment's whole dependency set, pinned, every package with its hashes.

``requirements.txt`` pins what the data scientist chose; the ~80 packages those bring are pinned by nothing, and
a package index (or anyone between it and the runner) could hand the environment other files. The lock pins every
package of ``requirements-dev.txt`` (the environment tests, training and serving run in) to one version and the
sha256 of its files, and the environment is installed from it in hash-checking mode with no dependency
resolution: a file whose hash is not in the lock is refused.

Two ways to lock, by what installs the environment:

- ``uv pip compile --universal --generate-hashes``: every platform's markers, every file of each version hashed
  (a Mac and a Linux runner install from the same lock);
- models with ``torch``: pip's own resolution (``pip install --dry-run --report``), which is what installs them
  (uv would take a CUDA build of several GB from the index instead of the CPU build the machine provides);
  the hashes are those of the files pip picked, so that lock is for the platform it was made on.

The local projects (``-e ../../shared``) are not in the lock: they are this repository's own code, installed
with ``--no-deps`` after the lock; their dependencies are in it. The first line of the lock records a digest of
what it was made from (every requirement line, the dependencies each local project declares): a lock whose inputs
changed is stale, and nothing installs from a stale lock.

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
_HEADER = re.compile(r"^# modelctl lock: inputs sha256 ([0-9a-f]{64}) \((uv universal|pip [^)]*)\)$")


class LockError(RuntimeError):
    """A lock that cannot be made or used (the message names the model folder and what to do)."""


@dataclass(frozen=True)
class Status:
    state: str  # "current", "stale" or "missing"
    path: Path
    packages: int = 0

    @property
    def message(self) -> str:
        shown = f"{self.path.parent.name}/{LOCK}"
        if self.state == "missing":
            return f"{shown} is missing: run `modelctl lock {self.path.parent.name}`"
        if self.state == "stale":
            return (
                f"{shown} is out of date ({SOURCE}, requirements.txt or a local project's dependencies changed "
                f"since it was made): run `modelctl lock {self.path.parent.name}`"
            )
        return f"{shown}: {self.packages} packages, every one with its hashes"


def uses_torch(folder: Path) -> bool:
    return any(line.name == "torch" for line in requirements.read(folder / SOURCE))


def inputs_digest(folder: Path) -> str:
    """sha256 of what the lock is made from: each requirement line of ``requirements-dev.txt`` (``-r`` followed)
    and the dependencies each local project it installs declares."""
    digest = hashlib.sha256()
    for line in requirements.read(folder / SOURCE):
        if line.is_local:
            project = (line.source.parent / line.target).resolve()
            digest.update(f"{line.kind}:{project.name}:{_project_dependencies(project)}\n".encode())
        else:
            digest.update(line.text.encode() + b"\n")
    return digest.hexdigest()


def _project_dependencies(project: Path) -> str:
    """A local project's declared dependencies (what installing it brings), as one line; the rest of its
    pyproject.toml (tool settings, test extras) does not make a lock stale."""
    pyproject = project / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "unreadable"
    dependencies = data.get("project", {}).get("dependencies", [])
    return json.dumps(sorted(str(d) for d in dependencies) if isinstance(dependencies, list) else str(dependencies))


def status(folder: Path) -> Status:
    path = folder / LOCK
    if not path.is_file():
        return Status("missing", path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return Status("stale", path)
    header = _HEADER.match(text.split("\n", 1)[0])
    if header is None or header.group(1) != inputs_digest(folder):
        return Status("stale", path)
    return Status("current", path, len(re.findall(r"^[A-Za-z0-9][^\s;]*==", text, re.M)))


def check_hashes(text: str, where: Path) -> None:
    """Every requirement of a lock carries a hash, and nothing in it installs from a path or a URL."""
    logical = re.sub(r"\\\n", " ", text)
    for number, line in enumerate(logical.splitlines(), 1):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-") or "://" in line or line.startswith((".", "/")):
            raise LockError(f"{where}: line {number} is not a pinned package ({line[:80]!r})")
        if "==" not in line or "--hash=sha256:" not in line:
            raise LockError(f"{where}: line {number} has no version pin or no hash ({line[:80]!r})")


def make(folder: Path, uv: str, env: Mapping[str, str], timeout: float = 900) -> Status:
    """Write ``folder/requirements.lock`` (atomically) and return its status."""
    digest = inputs_digest(folder)
    if uses_torch(folder):
        how = f"pip {sys.platform} cp{sys.version_info.major}{sys.version_info.minor}"
        body = _pip_lock(folder, env, timeout)
    else:
        body, how = _uv_lock(folder, uv, env, timeout), "uv universal"
    text = (
        f"# modelctl lock: inputs sha256 {digest} ({how})\n"
        f"# Made by `modelctl lock {folder.name}` from {SOURCE}; do not edit. The model's environment installs\n"
        "# exactly these files (hash-checked, no resolution), then the repository's own projects with --no-deps.\n"
        f"{body}"
    )
    check_hashes(text, folder / LOCK)
    fd, tmp = tempfile.mkstemp(prefix=".requirements.lock.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
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


def _uv_lock(folder: Path, uv: str, env: Mapping[str, str], timeout: float) -> str:
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory(prefix="modelctl-lock-") as tmp:
        out = Path(tmp) / LOCK
        argv = [uv, "pip", "compile", SOURCE, "--universal", "--generate-hashes", "--python-version", version]
        argv += ["--no-header", "--quiet", "--output-file", str(out)]
        _run(argv, folder, env, timeout, "uv pip compile")
        compiled = out.read_text(encoding="utf-8")
    # Drop the local projects (-e ../../shared): installed from the checkout, --no-deps, after the lock.
    kept: list[str] = []
    dropping = False
    for line in compiled.splitlines():
        if line.startswith(("-e ", "--editable")):
            dropping = True  # with its "# via" annotation lines
        elif not (dropping and line.lstrip().startswith("#")):
            dropping = False
            kept.append(line)
    return "\n".join(kept).strip("\n") + "\n"


def _pip_lock(folder: Path, env: Mapping[str, str], timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="modelctl-lock-") as tmp:
        venv = Path(tmp) / "venv"
        _run([sys.executable, "-m", "venv", str(venv)], folder, env, timeout, "python -m venv")
        report = Path(tmp) / "report.json"
        argv = [str(venv / "bin" / "python"), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        argv += ["--disable-pip-version-check", "--report", str(report), "-r", SOURCE]
        _run(argv, folder, env, timeout, "pip install --dry-run --report")
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
