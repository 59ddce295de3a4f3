"""The monorepo, its `[tool.modelctl]` settings, and a Model resolved once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelctl import envs
from modelctl.errors import UsageError
from modelctl.processenv import model_process_env
from modelctl.repo import GITHUB_MATRIX_LIMIT, Repo, Settings


def test_settings_defaults_and_validation(tmp_path: Path) -> None:
    assert Settings.read(tmp_path) == Settings()
    (tmp_path / "pyproject.toml").write_text('[tool.modelctl]\nmax_jobs = 40\nrepo_wide_paths = ["tox.ini"]\n')
    assert Settings.read(tmp_path) == Settings(("tox.ini",), max_jobs=40)
    (tmp_path / "pyproject.toml").write_text('[tool.modelctl]\nplatform_paths = ["lib/"]\n')
    assert Settings.read(tmp_path).platform_paths == ("lib/",)
    (tmp_path / "pyproject.toml").write_text('[tool.modelctl]\nplatform_paths = "lib/"\n')
    with pytest.raises(UsageError, match="platform_paths must be a list of path strings"):
        Settings.read(tmp_path)
    for bad in ("0", "257", "true", '"10"'):
        (tmp_path / "pyproject.toml").write_text(f"[tool.modelctl]\nmax_jobs = {bad}\n")
        with pytest.raises(UsageError, match=f"max_jobs must be an integer from 1 to {GITHUB_MATRIX_LIMIT}"):
            Settings.read(tmp_path)
    (tmp_path / "pyproject.toml").write_text("[tool.modelctl\n")
    with pytest.raises(UsageError, match="invalid TOML"):
        Settings.read(tmp_path)


def test_model_is_resolved_once(monorepo: Path) -> None:
    repo = Repo(monorepo)
    model = repo.model("iris_classifier")
    assert repo.model("iris_classifier") is model
    assert model.folder == monorepo / "models" / "iris_classifier" and model.config.name == "iris_classifier"
    assert model.sample()["instances"]
    with pytest.raises(UsageError, match="unknown model 'nope'"):
        repo.model("nope")


def test_bad_sample_is_a_clear_error(monorepo: Path) -> None:
    model = Repo(monorepo).model("iris_classifier")
    (model.folder / "sample_request.json").write_text('{"rows": []}')
    with pytest.raises(UsageError, match=r'sample_request.json must be \{"instances"'):
        model.sample()


def test_model_processes_see_only_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = ("BENTO_CLOUD_API_KEY", "SLACK_WEBHOOK_URL", "GITHUB_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    for name in (*secrets, "MODELCTL_STORE", "SOMETHING_ELSE", "FRAUD_DATA_URL"):
        monkeypatch.setenv(name, "s3cr3t-value")
    monkeypatch.setenv("IRIS_CLASSIFIER_DATA_URL", "sqlite:////data/x.db")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    env = model_process_env({"BENTOML_HOME": "/h"}, data_url="IRIS_CLASSIFIER_DATA_URL")
    assert not {*secrets, "MODELCTL_STORE", "SOMETHING_ELSE", "FRAUD_DATA_URL"} & set(env), "another model's data too"
    assert env["IRIS_CLASSIFIER_DATA_URL"] == "sqlite:////data/x.db" and env["BENTOML_HOME"] == "/h"
    assert env["LC_ALL"] == "C.UTF-8" and env["PATH"] == os.environ["PATH"]


def test_model_processes_cache_bytecode_in_their_environment_not_beside_the_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    python = tmp_path / "env" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    source = tmp_path / "model"
    source.mkdir()
    (source / "train_helpers.py").write_text("VALUE = 41 + 1\n")
    env = model_process_env(python=python)
    assert "PYTHONDONTWRITEBYTECODE" not in env
    argv = [str(python), "-c", "import train_helpers; print(train_helpers.VALUE)"]
    out = subprocess.run(argv, cwd=source, env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "42"
    assert not list(source.rglob("*.pyc")), "nothing is written beside the model's sources"
    assert list((tmp_path / "env" / "pycache").rglob("train_helpers*.pyc")), "the environment keeps the bytecode"
    assert "PYTHONPYCACHEPREFIX" not in model_process_env(), "without an environment, the caller's setting stands"


def test_environment_key_follows_requirements_and_the_lock(monorepo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = monorepo / "models" / "iris_classifier"
    (folder / "requirements.lock").unlink(missing_ok=True)  # the unlocked road (the suites allow it)
    monkeypatch.setenv("MODELCTL_ALLOW_UNLOCKED", "1")
    before = envs.content_key(monorepo, folder)
    assert envs.content_key(monorepo, folder) == before
    requirements = folder / "requirements.txt"
    requirements.write_text(requirements.read_text() + "tqdm==4.67.1\n")
    assert envs.content_key(monorepo, folder) != before, "a new pin means a new environment"


def test_a_misspelt_setting_is_an_error_not_a_silent_default(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.modelctl]\nmax_job = 10\n")
    with pytest.raises(UsageError, match="unknown key tool.modelctl.max_job; expected one of: max_jobs"):
        Settings.read(tmp_path)
