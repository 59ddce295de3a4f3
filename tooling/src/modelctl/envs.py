"""Each model runs in its own environment: the `model-<name>` tox env, built from its pinned requirements.

tox is asked once per model and process, and not at all when a stamp beside the environment shows it
was built from the same requirements, tox configuration and interpreter (a tox call costs 1-2 s even
when nothing changes).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from modelctl import cmd, requirements
from modelctl.errors import ModelctlError
from modelctl.processenv import model_process_env

if TYPE_CHECKING:
    from modelctl.repo import Repo

TOX_PREFIX = "model-"
STAMP = ".modelctl-env-stamp"
_checked: dict[Path, Path] = {}


class EnvError(ModelctlError):
    pass


def tox(root: Path, *args: str, what: str | None = None, check: bool = True) -> cmd.Completed:
    """tox in ``root`` with its own work dir.

    A tox started from inside another tox env (as in CI) inherits TOX_WORK_DIR and would otherwise
    put the model's environment in the outer project's .tox.
    """
    # The installer's settings and caches, and what a model's code may see: never deploy or store credentials
    # (package installs run code from sdists).
    installer = {k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_"))}
    env = model_process_env(installer)
    return cmd.run(
        [sys.executable, "-m", "tox", "--workdir", str(root / ".tox"), *args],
        what=what or f"tox {' '.join(args)}",
        cwd=root,
        env=env,
        check=check,
    )


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
    return digest.hexdigest()


def python_of(root: Path, model: str, folder: Path) -> Path:
    """The python of ``model``'s environment, created or updated by tox when its inputs changed."""
    python = env_dir(root, model) / "bin" / "python"
    if python in _checked:
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
    _checked[python] = python
    return python


def forget(root: Path, model: str) -> None:
    """Forget that ``model``'s environment was checked in this process (tests rebuild environments)."""
    _checked.pop(env_dir(root, model) / "bin" / "python", None)


def runtime_script(name: str) -> Path:
    """A script under modelctl/runtime/, run with a model's python (it needs only bentoml + stdlib)."""
    return Path(__file__).with_name("runtime") / name


def model_python(repo: Repo, model: str) -> Path:
    """The python of ``model``'s environment, for code that holds a repo and a model name."""
    return python_of(repo.root, model, repo.model_dir(model))
