"""Each model runs in its own environment: the `model-<name>` tox env (its pinned requirements)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from modelctl.errors import ModelctlError
from modelctl.repo import Repo


class EnvError(ModelctlError):
    pass


def run_tox(repo: Repo, *args: str) -> subprocess.CompletedProcess[str]:
    """tox in ``repo`` with its own work dir.

    A tox started from inside another tox env (as in CI) inherits TOX_WORK_DIR and would
    otherwise put the model's environment in the outer project's .tox.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOX_") and k != "VIRTUAL_ENV"}
    return subprocess.run(
        [sys.executable, "-m", "tox", "--workdir", str(repo.root / ".tox"), *args],
        cwd=repo.root,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )


def model_python(repo: Repo, model: str) -> Path:
    """The python of ``model``'s environment, created or updated by tox first."""
    result = run_tox(repo, "run", "-e", f"model-{model}", "--notest", "-q")
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
