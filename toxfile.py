"""In-tree tox plugin: one `model-<name>` environment per `models/<name>/` folder.

A model added later gets its environment without anyone editing tox.ini. Each environment
installs that model's own `requirements-dev.txt` (its pinned runtime requirements, `shared/`
editable, pytest) and runs the model's tests from its folder. Label: `models`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command
from tox.plugin import impl
from tox.tox_env.python.pip.req_file import PythonDeps

ROOT = Path(__file__).resolve().parent
# The tox host environment need not have modelctl installed: its requirements module is stdlib-only.
sys.path.insert(0, str(ROOT / "tooling" / "src"))
from modelctl import lockfile, requirements  # noqa: E402

PREFIX = "model-"


def requirement_lines(path: Path) -> list[str]:
    """The requirements of ``path`` with ``-r`` includes expanded and local paths made absolute
    (modelctl.requirements: the one reading of a requirements file that build and doctor use too)."""
    return [requirements.absolute(line) for line in requirements.read(path)]


def model_dirs(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in (root / "models").glob("*/config.yaml"))


@impl
def tox_extend_envs() -> Iterable[str]:
    return [PREFIX + d.name for d in model_dirs()]


def _failing(message: str) -> dict[str, Any]:
    """An environment that installs nothing and fails with ``message``: one model's lock problem stops that model's
    env only (the lint env that reports the problem, and every other env, still run)."""
    exit_with = [sys.executable, "-c", "import sys; sys.exit(sys.argv[1])", f"toxfile.py: {message}"]
    return {"deps": PythonDeps("", root=ROOT), "commands_pre": [Command(exit_with)]}


def _locked(model_dir: Path, lock: Path, uses_torch: bool) -> dict[str, Any]:
    """Install exactly the lock's wheels (hash-checked, no resolution, nothing built), then the repository's own
    projects with --no-deps, built by the backend the lock installed: what modelctl.envs does."""
    lines = requirements.read(model_dir / "requirements-dev.txt")
    options = [requirements.absolute(line) for line in lines if line.kind == "option"]
    projects: list[str] = []
    for line in lines:
        if line.is_local:
            folder = str(lockfile.project_of(line))
            projects += ["-e", folder] if line.kind == "editable" else [folder]
    if uses_torch:  # pip, whose configuration finds the CPU build on the machine's disk
        install = ["python", "-m", "pip", "install", "--require-hashes", "--no-deps", "--only-binary", ":all:"]
        pre = ["python", "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", *projects]
    else:  # --no-config: no uv.toml in the model folder sets uv's options
        from uv import find_uv_bin

        uv = str(find_uv_bin())
        install = [uv, "pip", "install", "--no-config", "--require-hashes", "--no-deps", "--no-build"]
        pre = [uv, "pip", "install", "--no-config", "--quiet", "--no-deps", "--no-build-isolation", *projects]
    return {
        "deps": PythonDeps("\n".join([*options, f"-r {lock}"]), root=ROOT),
        "install_command": Command([*install, "{opts}", "{packages}"]),
        "commands_pre": [Command(pre)] if projects else [],
    }


def _install_settings(model_dir: Path) -> dict[str, Any]:
    try:
        locked = lockfile.status(model_dir)
        uses_torch = lockfile.uses_torch(model_dir)
    except lockfile.LockError as exc:
        return _failing(str(exc))
    if locked.state == "current":
        return _locked(model_dir, locked.path, uses_torch)
    if locked.state == "missing" and os.environ.get(lockfile.ALLOW_UNLOCKED) == "1":
        return {"deps": PythonDeps("\n".join(requirement_lines(model_dir / "requirements-dev.txt")), root=ROOT)}
    return _failing(locked.message)


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:  # noqa: ARG001
    for model_dir in model_dirs():
        settings: dict[str, Any] = {
            "description": f"test model {model_dir.name} in its own environment",
            "labels": ["models"],
            "skip_install": True,
            "change_dir": model_dir,
            "commands": [Command(["pytest", "-q", "-p", "no:cacheprovider"])],
            **_install_settings(model_dir),
        }
        try:
            uses_torch = lockfile.uses_torch(model_dir)
        except lockfile.LockError:
            uses_torch = False
        if uses_torch:
            # uv ignores the CPU torch wheel on local disk and would download CUDA builds (GBs): torch
            # models install with pip (see ../shared/notes/facts.md).
            settings["runner"] = "virtualenv"
        state.conf.memory_seed_loaders[PREFIX + model_dir.name].append(MemoryLoader(**settings))
