"""Each model runs in its own environment: the `model-<name>` tox env (its pinned requirements)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from modelctl.errors import ModelctlError
from modelctl.repo import Repo


class EnvError(ModelctlError):
    pass


def model_python(repo: Repo, model: str) -> Path:
    """The python of ``model``'s environment, created or updated by tox first."""
    result = subprocess.run(
        [sys.executable, "-m", "tox", "run", "-e", f"model-{model}", "--notest", "-q"],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise EnvError(f"could not create the environment of {model} (`tox run -e model-{model} --notest`):\n{tail}")
    python = repo.root / ".tox" / f"model-{model}" / "bin" / "python"
    if not python.exists():
        raise EnvError(f"tox reported success but {python} does not exist")
    return python


def runtime_script(name: str) -> Path:
    """A script under modelctl/runtime/, run with a model's python (it needs only bentoml + stdlib)."""
    return Path(__file__).with_name("runtime") / name
