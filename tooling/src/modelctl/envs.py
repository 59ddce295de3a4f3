"""Each model runs in its own environment, installed from its ``requirements.lock`` (:mod:`modelctl.lockfile`).

Environments are kept by content key (the interpreter, tox.ini and toxfile.py, every requirement line, the files
of every local project a requirement installs, and the lock): under ``MODELCTL_ENV_CACHE`` when it is set (the test
suites and CI set it), shared by every monorepo and model that asks for the same key, else under the repository's
``.modelctl/envs/``. A changed requirement, lock or file of ``shared/`` makes a new key, so an environment is never a
stale one. Local projects are installed from a snapshot kept with the environment, so it never depends on the
checkout that built it. tox's own ``model-<name>`` environments (`tox run -m models`) install the same lock the same
way (toxfile.py).
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


def installer_env() -> dict[str, str]:
    """The environment of package installs and resolution: the installer's settings and caches, and what a model's
    code may see; never deploy or store credentials (package installs run code from sdists)."""
    return model_process_env({k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_"))})


def _lock_bytes(folder: Path) -> bytes:
    """The model's requirements.lock, which its environment is installed from. A stale or invalid lock is refused
    before anything is installed, and so is a missing one unless MODELCTL_ALLOW_UNLOCKED=1 (the test suites, which
    bake models that were never locked)."""
    try:
        state = lockfile.status(folder)
    except lockfile.LockError as exc:
        raise EnvError(str(exc)) from None
    if state.state == "current":
        return state.path.read_bytes()
    if state.state == "missing" and os.environ.get(lockfile.ALLOW_UNLOCKED) == "1":
        return b""
    hint = f" (or set {lockfile.ALLOW_UNLOCKED}=1 to install from its requirements unverified)"
    raise EnvError(state.message + (hint if state.state == "missing" else ""))


def python_of(root: Path, model: str, folder: Path) -> Path:
    """The python of ``model``'s environment, created when its inputs changed: under ``MODELCTL_ENV_CACHE``,
    shared by content key across checkouts, else under the repository's ``.modelctl/envs/``."""
    cache = os.environ.get(CACHE_VARIABLE)
    return _shared_python(Path(cache) if cache else root / ".modelctl" / "envs", root, model, folder)


def forget(root: Path, model: str) -> None:
    """Forget that ``model``'s environment was checked in this process (tests rebuild environments)."""
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
    return lockfile.project_of(line)


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
    locked = bool(_lock_bytes(folder))
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
        wheels_only, projects_argv = ["--only-binary", ":all:"], ["--no-deps", "--no-build-isolation"]
    else:
        # --no-config: no uv.toml or pyproject.toml of the model folder (uv's working directory) sets its options.
        installer_argv = [_uv(), "pip", "install", "--no-config", "--quiet", "--python", python]
        wheels_only, projects_argv = ["--no-build"], ["--no-deps", "--no-build-isolation"]
    if locked:
        # Exactly the lock's wheels, each checked against its hashes, nothing resolved and nothing built; then the
        # repository's own projects, built by the backend the lock installed, their dependencies already there.
        lock = str(folder / lockfile.LOCK)
        argv = [*installer_argv, *options, "--require-hashes", "--no-deps", *wheels_only, "-r", lock]
        _install(model, argv, folder, env)
        if projects:
            _install(model, [*installer_argv, *projects_argv, *projects], folder, env)
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
