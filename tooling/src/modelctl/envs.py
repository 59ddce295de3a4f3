"""Each model runs in its own environment: the `model-<name>` tox env, built from its pinned requirements.

tox is asked once per model and process, and not at all when a stamp beside the environment shows it
was built from the same requirements, tox configuration and interpreter (a tox call costs 1-2 s even
when nothing changes).

With ``MODELCTL_ENV_CACHE`` set (the test suites and CI set it), environments are shared instead: one per
content key (the interpreter, the tox configuration, every requirement line, and the files of every local
project a requirement installs), under that folder, whichever monorepo or model asks. Models with the same
requirements share one; a changed requirement or a changed file of ``shared/`` makes a new key, so a shared
environment is never a stale one. Local projects are installed from a snapshot kept with the environment, so
it never depends on the checkout that built it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from modelctl import cmd, lockfile, requirements
from modelctl.errors import ModelctlError
from modelctl.processenv import model_process_env

if TYPE_CHECKING:
    from modelctl.repo import Repo

TOX_PREFIX = "model-"
STAMP = ".modelctl-env-stamp"
CACHE_VARIABLE = "MODELCTL_ENV_CACHE"
CACHE_KEEP = 12  # shared environments kept; the least recently used beyond that are removed
_SNAPSHOT_SKIP = ("__pycache__", "*.egg-info", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".tox", "build", "dist")
_checked: dict[tuple[Path, str], Path] = {}


class EnvError(ModelctlError):
    pass


def tox(root: Path, *args: str, what: str | None = None, check: bool = True) -> cmd.Completed:
    """tox in ``root`` with its own work dir.

    A tox started from inside another tox env (as in CI) inherits TOX_WORK_DIR and would otherwise
    put the model's environment in the outer project's .tox.
    """
    env = installer_env()
    return cmd.run(
        [sys.executable, "-m", "tox", "--workdir", str(root / ".tox"), *args],
        what=what or f"tox {' '.join(args)}",
        cwd=root,
        env=env,
        check=check,
    )


def installer_env() -> dict[str, str]:
    """The environment of package installs and resolution: the installer's settings and caches, and what a model's
    code may see; never deploy or store credentials (package installs run code from sdists)."""
    return model_process_env({k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_"))})


def env_dir(root: Path, model: str) -> Path:
    return root / ".tox" / f"{TOX_PREFIX}{model}"


def _fingerprint(root: Path, folder: Path) -> str:
    digest = hashlib.sha256(sys.version.encode())
    for name in ("tox.ini", "toxfile.py"):
        path = root / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    try:
        lines = requirements.read(folder / "requirements-dev.txt")
    except (OSError, ValueError) as exc:
        raise EnvError(f"cannot read {folder / 'requirements-dev.txt'}: {exc}") from exc
    for line in lines:
        digest.update(requirements.absolute(line).encode() + b"\n")
        if line.is_local:  # an editable project changes its metadata with its pyproject
            project = (line.source.parent / line.target).resolve() / "pyproject.toml"
            digest.update(project.read_bytes() if project.is_file() else b"")
    digest.update(_lock_bytes(folder))
    return digest.hexdigest()


def _lock_bytes(folder: Path) -> bytes:
    """The model's requirements.lock, which its environment is installed from when it is current; a stale lock is
    refused before anything is installed."""
    state = lockfile.status(folder)
    if state.state == "stale":
        raise EnvError(state.message)
    return state.path.read_bytes() if state.state == "current" else b""


def python_of(root: Path, model: str, folder: Path) -> Path:
    """The python of ``model``'s environment, created or updated when its inputs changed."""
    cache = os.environ.get(CACHE_VARIABLE)
    if cache:
        return _shared_python(Path(cache), root, model, folder)
    python = env_dir(root, model) / "bin" / "python"
    if (python, "") in _checked:
        return python
    stamp = env_dir(root, model) / STAMP
    wanted = _fingerprint(root, folder)
    if not (python.exists() and stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted):
        result = tox(root, "run", "-e", f"{TOX_PREFIX}{model}", "--notest", "-q", check=False)
        if result.returncode != 0:
            raise EnvError(
                f"could not create the environment of {model} (`tox run -e {TOX_PREFIX}{model} --notest`, "
                f"exit {result.returncode}):\n{cmd.tail_of(result.output, 12)}"
            )
        if not python.exists():
            raise EnvError(f"tox reported success but {python} does not exist")
        stamp.write_text(wanted, encoding="utf-8")
    _checked[(python, "")] = python
    return python


def forget(root: Path, model: str) -> None:
    """Forget that ``model``'s environment was checked in this process (tests rebuild environments)."""
    _checked.pop((env_dir(root, model) / "bin" / "python", ""), None)
    for key in [k for k in _checked if k[1] == f"{root}:{model}"]:
        _checked.pop(key)


# --- environments shared by content key (MODELCTL_ENV_CACHE) ---------------------------------------------------


def tree_digest(folder: Path) -> str:
    """sha256 over the relative paths and bytes of every file under ``folder`` (caches and build output skipped)."""
    digest = hashlib.sha256()
    skip = shutil.ignore_patterns(*_SNAPSHOT_SKIP)
    pending = [folder]
    files: list[Path] = []
    while pending:
        current = pending.pop()
        names = sorted(os.listdir(current))
        ignored = skip(str(current), names)
        for name in names:
            if name in ignored:
                continue
            path = current / name
            if path.is_dir() and not path.is_symlink():
                pending.append(path)
            elif path.is_file():
                files.append(path)
    for path in sorted(files):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _local_project(line: requirements.Line) -> Path:
    return (line.source.parent / Path(line.target).expanduser()).resolve()


def content_key(root: Path, folder: Path) -> str:
    """What a model environment is built from, wherever the checkout is: the interpreter, tox.ini and
    toxfile.py, every requirement line (``-r`` followed) and the files of every local project."""
    digest = hashlib.sha256(sys.version.encode() + b"\0")
    for name in ("tox.ini", "toxfile.py"):
        path = root / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    for line in _requirement_lines(folder):
        if line.is_local:
            project = _local_project(line)
            if not project.is_dir():
                raise EnvError(f"{line.source}: {line.text!r} points at {project}, which is not a folder")
            digest.update(f"{line.kind}:{project.name}:{tree_digest(project)}\n".encode())
        else:
            digest.update(line.text.encode() + b"\n")
    digest.update(_lock_bytes(folder))
    return digest.hexdigest()[:32]


def _requirement_lines(folder: Path) -> list[requirements.Line]:
    try:
        return requirements.read(folder / "requirements-dev.txt")
    except (OSError, ValueError) as exc:
        raise EnvError(f"cannot read {folder / 'requirements-dev.txt'}: {exc}") from exc


def _shared_python(cache: Path, root: Path, model: str, folder: Path) -> Path:
    key = content_key(root, folder)
    home = cache / key
    python = home / "bin" / "python"
    if (python, f"{root}:{model}") in _checked:
        return python
    from filelock import FileLock  # imported when used: the CLI starts without it (test_statestore)

    cache.mkdir(parents=True, exist_ok=True)
    # Several processes (pytest workers, parallel CI steps) may ask for the same key at once: one builds it.
    with FileLock(str(cache / f"{key}.lock"), timeout=900):
        if not (home / STAMP).is_file():
            shutil.rmtree(home, ignore_errors=True)
            try:
                _build_shared(home, folder, model)
            except BaseException:
                shutil.rmtree(home, ignore_errors=True)
                raise
            (home / STAMP).write_text(key, encoding="utf-8")
        os.utime(home / STAMP)  # last use, for pruning
    _prune(cache, keep=key)
    _checked[(python, f"{root}:{model}")] = python
    return python


def _build_shared(home: Path, folder: Path, model: str) -> None:
    lines = _requirement_lines(folder)
    env = installer_env()
    # uv ignores the CPU torch wheel on local disk and would download CUDA builds: torch models use pip (toxfile.py).
    with_pip = any(line.name == "torch" for line in lines)
    if with_pip:
        _install(model, [sys.executable, "-m", "venv", str(home)], folder, env)
    else:
        _install(model, [_uv(), "venv", "--quiet", "--python", sys.executable, str(home)], folder, env)
    locked = lockfile.status(folder).state == "current"
    installs: list[str] = []
    options: list[str] = []  # index and find-links options of the requirements files: for the lock's files too
    projects: list[str] = []
    for line in lines:
        if line.is_local:  # a snapshot of the project, kept inside the environment
            project = _local_project(line)
            snapshot = home / "src" / project.name
            shutil.copytree(project, snapshot, ignore=shutil.ignore_patterns(*_SNAPSHOT_SKIP))
            projects += ["-e", str(snapshot)] if line.kind == "editable" else [str(snapshot)]
        elif line.kind == "option":
            options += line.text.split()
        else:
            installs.append(line.target if line.kind == "editable" else line.text)
    python = str(home / "bin" / "python")
    if with_pip:
        installer_argv = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    else:
        installer_argv = [_uv(), "pip", "install", "--quiet", "--python", python]
    if locked:
        # Exactly the lock's files, each checked against its hashes, nothing resolved; then the repository's own
        # projects, whose dependencies the lock holds.
        lock = str(folder / lockfile.LOCK)
        _install(model, [*installer_argv, *options, "--require-hashes", "--no-deps", "-r", lock], folder, env)
        if projects:
            _install(model, [*installer_argv, "--no-deps", *projects], folder, env)
    else:
        _install(model, [*installer_argv, *options, *installs, *projects], folder, env)


def _install(model: str, argv: list[str], folder: Path, env: dict[str, str]) -> None:
    result = cmd.run(argv, what=f"building the environment of {model}", cwd=folder, env=env, check=False)
    if result.returncode != 0:
        raise EnvError(
            f"could not create the environment of {model} (`{' '.join(argv[:3])} ...`, exit {result.returncode}):\n"
            f"{cmd.tail_of(result.output, 12)}"
        )


def _uv() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _prune(cache: Path, keep: str) -> None:
    """Remove the least recently used environments beyond CACHE_KEEP (never one in use by this call)."""
    built = sorted(
        (p for p in cache.iterdir() if (p / STAMP).is_file()), key=lambda p: (p / STAMP).stat().st_mtime, reverse=True
    )
    for old in built[CACHE_KEEP:]:
        if old.name == keep or time.time() - (old / STAMP).stat().st_mtime < 3600:
            continue  # another process may have just taken it
        from filelock import FileLock

        lock = FileLock(str(cache / f"{old.name}.lock"), timeout=0)
        try:
            with lock:
                shutil.rmtree(old, ignore_errors=True)
        except TimeoutError:
            continue


def runtime_script(name: str) -> Path:
    """A script under modelctl/runtime/, run with a model's python (it needs only bentoml + stdlib)."""
    return Path(__file__).with_name("runtime") / name


def model_python(repo: Repo, model: str) -> Path:
    """The python of ``model``'s environment, for code that holds a repo and a model name."""
    return python_of(repo.root, model, repo.model_dir(model))
