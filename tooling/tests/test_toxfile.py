"""The in-tree tox plugin gives every models/<name>/ folder a `model-<name>` env, new ones included."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from modelctl import lockfile


def tox_list(repo: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "tox", "list", "--no-desc"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_model_added_later_gets_its_env_without_editing_tox_ini(monorepo: Path) -> None:
    tox_ini = (monorepo / "tox.ini").read_text()
    assert "model-" + "iris_classifier" in tox_list(monorepo)
    shutil.copytree(monorepo / "models/iris_classifier", monorepo / "models/churn")
    listed = tox_list(monorepo).split()
    assert {"model-iris_classifier", "model-churn"} <= set(listed)
    assert (monorepo / "tox.ini").read_text() == tox_ini


def test_folders_without_config_are_not_models(monorepo: Path) -> None:
    (monorepo / "models/scratch").mkdir()
    assert "model-scratch" not in tox_list(monorepo)


def tox_config(repo: Path, env: str, *keys: str, allow_unlocked: bool = False) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != lockfile.ALLOW_UNLOCKED}
    if allow_unlocked:
        environ[lockfile.ALLOW_UNLOCKED] = "1"
    argv = [sys.executable, "-m", "tox", "config", "-e", env, "-k", *keys]
    return subprocess.run(argv, cwd=repo, capture_output=True, text=True, check=False, env=environ)


def test_model_envs_carry_the_models_label_and_install_their_lock(monorepo: Path) -> None:
    result = tox_config(monorepo, "model-iris_classifier", "labels", "deps", "change_dir", "runner", "install_command",
                        "commands_pre")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "labels = models" in result.stdout
    # exactly the lock's wheels, hash-checked, nothing resolved or built, no uv.toml of the model folder read
    assert f"-r {monorepo / 'models/iris_classifier/requirements.lock'}" in result.stdout
    assert "bentoml==" not in result.stdout
    assert re.search(
        r"install_command = \S*uv pip install --no-config --require-hashes --no-deps --no-build", result.stdout
    )
    # then shared/ itself, built by the locked backend, without its dependencies (the lock has them)
    assert re.search(rf"--no-deps --no-build-isolation -e {re.escape(str(monorepo / 'shared'))}", result.stdout)
    assert f"change_dir = {monorepo / 'models/iris_classifier'}" in result.stdout
    assert "runner = uv-venv-runner" in result.stdout


def test_without_a_lock_the_env_installs_nothing_unless_allowed(monorepo: Path) -> None:
    (monorepo / "models/iris_classifier/requirements.lock").unlink()
    refused = tox_config(monorepo, "model-iris_classifier", "deps", "commands_pre")
    assert "iris_classifier/requirements.lock is missing: run `modelctl lock iris_classifier`" in refused.stdout
    assert "bentoml==" not in refused.stdout
    allowed = tox_config(monorepo, "model-iris_classifier", "deps", allow_unlocked=True)  # the test suites' road
    assert "bentoml==1.4.40" in allowed.stdout and "pytest==" in allowed.stdout, "requirements-dev -> requirements"
    assert f"-e {monorepo / 'shared'}" in allowed.stdout


def test_a_stale_lock_stops_that_model_s_env_only(monorepo: Path) -> None:
    requirements = monorepo / "models/iris_classifier/requirements.txt"
    requirements.write_text(requirements.read_text().replace("numpy==2.4.6", "numpy==2.4.5"))
    result = tox_config(monorepo, "model-iris_classifier", "deps", "commands_pre")
    assert "iris_classifier/requirements.lock is out of date" in result.stdout
    assert "run `modelctl lock iris_classifier`" in result.stdout and "numpy" not in result.stdout
    assert tox_config(monorepo, "lint", "deps").returncode == 0  # the env that reports it still runs
    assert "model-iris_classifier" in tox_list(monorepo)


def test_torch_models_use_pip(monorepo: Path) -> None:
    torch_model = monorepo / "models/torchy"
    shutil.copytree(monorepo / "models/iris_classifier", torch_model)
    (torch_model / "requirements.lock").unlink()  # not torchy's
    dev = torch_model / "requirements-dev.txt"  # torch in the dev requirements only: still pip
    dev.write_text(dev.read_text() + "torch==2.13.0\n")
    result = tox_config(monorepo, "model-torchy", "runner", allow_unlocked=True)
    assert "runner = virtualenv" in result.stdout, result.stdout + result.stderr


def test_pins_behind_an_include_reach_the_env(monorepo: Path) -> None:
    """requirements-dev.txt includes requirements.txt: the tox env gets both, local paths made absolute."""
    (monorepo / "models/iris_classifier/requirements.lock").unlink()  # the unlocked road
    requirements = monorepo / "models/iris_classifier/requirements.txt"
    requirements.write_text(requirements.read_text() + "tqdm==4.67.1\n")
    result = tox_config(monorepo, "model-iris_classifier", "deps", allow_unlocked=True)
    assert "tqdm==4.67.1" in result.stdout and f"-e {monorepo / 'shared'}" in result.stdout, result.stdout
