"""In-tree tox plugin: one `model-<name>` environment per `models/<name>/` folder.

A model added later gets its environment without anyone editing tox.ini. Each environment
installs that model's own `requirements-dev.txt` (its pinned runtime requirements, `shared/`
editable, pytest) and runs the model's tests from its folder. Label: `models`.
"""

from __future__ import annotations

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


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:  # noqa: ARG001
    for model_dir in model_dirs():
        dev_requirements = model_dir / "requirements-dev.txt"
        uses_torch = any(line.name == "torch" for line in requirements.read(model_dir / "requirements.txt"))
        deps, pre = requirement_lines(dev_requirements), []
        locked = lockfile.status(model_dir)
        if locked.state == "stale":
            raise SystemExit(f"toxfile.py: {locked.message}")
        if locked.state == "current":
            # The lock's files (every one hash-checked), then the repository's own projects without dependencies.
            lines = requirements.read(dev_requirements)
            options = [requirements.absolute(line) for line in lines if line.kind == "option"]
            projects = [requirements.absolute(line) for line in lines if line.is_local]
            deps = [*options, f"-r {locked.path}"]
            if uses_torch:  # pip: hash-checking mode is all or nothing, and a project folder has no hash
                pre = [Command(["python", "-m", "pip", "install", "--quiet", "--no-deps", *" ".join(projects).split()])]
            else:  # uv checks every hash the lock gives
                deps += projects
        settings: dict[str, Any] = {
            "description": f"test model {model_dir.name} in its own environment",
            "labels": ["models"],
            "skip_install": True,
            "deps": PythonDeps("\n".join(deps), root=ROOT),
            "change_dir": model_dir,
            "commands_pre": pre,
            "commands": [Command(["pytest", "-q", "-p", "no:cacheprovider"])],
        }
        if uses_torch:
            # uv ignores the CPU torch wheel on local disk and would download CUDA builds (GBs): torch
            # models install with pip (see ../shared/notes/facts.md).
            settings["runner"] = "virtualenv"
        state.conf.memory_seed_loaders[PREFIX + model_dir.name].append(MemoryLoader(**settings))
