"""The in-tree tox plugin gives every models/<name>/ folder a `model-<name>` env, new ones included."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path


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


def test_model_envs_carry_the_models_label_and_their_requirements(monorepo: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tox",
            "config",
            "-e",
            "model-iris_classifier",
            "-k",
            "labels",
            "deps",
            "change_dir",
            "runner",
        ],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "labels = models" in result.stdout
    # the example model carries its lock: the environment is exactly the lock's files, then shared/ itself
    assert f"-r {monorepo / 'models/iris_classifier/requirements.lock'}" in result.stdout
    assert "bentoml==" not in result.stdout
    assert f"-e {monorepo / 'shared'}" in result.stdout, "the relative shared/ path is resolved against the file"
    assert f"change_dir = {monorepo / 'models/iris_classifier'}" in result.stdout
    assert "runner = uv-venv-runner" in result.stdout

    (monorepo / "models/iris_classifier/requirements.lock").unlink()  # a model without a lock: its requirements
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "model-iris_classifier", "-k", "deps"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "bentoml==1.4.40" in result.stdout and "pytest==" in result.stdout, (
        "requirements-dev.txt -> requirements.txt"
    )
    assert f"-e {monorepo / 'shared'}" in result.stdout


def test_a_stale_lock_stops_tox_with_what_to_run(monorepo: Path) -> None:
    requirements = monorepo / "models/iris_classifier/requirements.txt"
    requirements.write_text(requirements.read_text().replace("numpy==2.4.6", "numpy==2.4.5"))
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "model-iris_classifier", "-k", "deps"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "iris_classifier/requirements.lock is out of date" in result.stdout + result.stderr
    assert "run `modelctl lock iris_classifier`" in result.stdout + result.stderr


def test_torch_models_use_pip(monorepo: Path) -> None:
    torch_model = monorepo / "models/torchy"
    shutil.copytree(monorepo / "models/iris_classifier", torch_model)
    (torch_model / "requirements.lock").unlink()  # not torchy's
    requirements = torch_model / "requirements.txt"
    requirements.write_text(requirements.read_text() + "torch==2.13.0\n")
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "model-torchy", "-k", "runner"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "runner = virtualenv" in result.stdout, result.stdout + result.stderr


def test_pins_behind_an_include_reach_the_env(monorepo: Path) -> None:
    """requirements-dev.txt includes requirements.txt: the tox env gets both, local paths made absolute."""
    (monorepo / "models/iris_classifier/requirements.lock").unlink()  # the unlocked road
    requirements = monorepo / "models/iris_classifier/requirements.txt"
    requirements.write_text(requirements.read_text() + "tqdm==4.67.1\n")
    result = subprocess.run(
        [sys.executable, "-m", "tox", "config", "-e", "model-iris_classifier", "-k", "deps"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "tqdm==4.67.1" in result.stdout and f"-e {monorepo / 'shared'}" in result.stdout, result.stdout
