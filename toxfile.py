"""In-tree tox plugin: one `model-<name>` environment per `models/<name>/` folder.

A model added later gets its environment without anyone editing tox.ini. Each environment
installs that model's own `requirements-dev.txt` (its pinned runtime requirements, `shared/`
editable, pytest) and runs the model's tests from its folder. Label: `models`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tox.config.loader.memory import MemoryLoader
from tox.config.types import Command
from tox.plugin import impl
from tox.tox_env.python.pip.req_file import PythonDeps

ROOT = Path(__file__).resolve().parent
PREFIX = "model-"
# uv ignores the CPU torch wheel on local disk and would download CUDA builds (GBs): torch
# models install with pip (see ../shared/notes/facts.md).
_TORCH = re.compile(r"^\s*torch\b", re.MULTILINE)


def requirement_lines(path: Path) -> list[str]:
    """The requirements of ``path`` with ``-r`` includes expanded and local paths made absolute.

    pip and uv resolve a relative path in a requirements file against the current
    directory, not the file (so `-e ../../shared` works from the model folder only); tox
    installs from the repo root, so the paths are resolved here, against the file.
    """
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            lines.extend(requirement_lines(path.parent / line.split(maxsplit=1)[1]))
        elif line.startswith(("-e ", "--editable ")):
            target = line.split(maxsplit=1)[1]
            local = target.startswith((".", "/"))
            lines.append(f"-e {(path.parent / target).resolve() if local else target}")
        elif line.startswith((".", "/")):
            lines.append(str((path.parent / line).resolve()))
        else:
            lines.append(line)
    return lines


def model_dirs(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in (root / "models").glob("*/config.yaml"))


@impl
def tox_extend_envs() -> Iterable[str]:
    return [PREFIX + d.name for d in model_dirs()]


@impl
def tox_add_core_config(core_conf: Any, state: Any) -> None:  # noqa: ARG001
    for model_dir in model_dirs():
        requirements = model_dir / "requirements-dev.txt"
        uses_torch = _TORCH.search((model_dir / "requirements.txt").read_text(encoding="utf-8")) is not None
        settings: dict[str, Any] = {
            "description": f"test model {model_dir.name} in its own environment",
            "labels": ["models"],
            "skip_install": True,
            "deps": PythonDeps("\n".join(requirement_lines(requirements)), root=ROOT),
            "change_dir": model_dir,
            "commands": [Command(["pytest", "-q", "-p", "no:cacheprovider"])],
        }
        if uses_torch:
            settings["runner"] = "virtualenv"
        state.conf.memory_seed_loaders[PREFIX + model_dir.name].append(MemoryLoader(**settings))
