"""Fixtures: a temp monorepo as a real git repository, and an in-process CLI runner.

Platform tests never read the live ``models/`` folder: a monorepo copy holds the example model
baked fresh from the template, so adding models to this repository never changes what they see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelctl.main import main

ROOT = Path(__file__).resolve().parents[2]
# What a monorepo copy needs for modelctl, pre-commit and tox to behave as in the real one
# (models are baked from the template, not copied).
COPY = (
    "cookiecutter-model",
    "shared",
    "tooling/src",
    "tooling/run_modelctl.py",
    "tox.ini",
    "toxfile.py",
    "pyproject.toml",
    ".pre-commit-config.yaml",
    ".gitignore",
)
IGNORE = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache", ".ruff_cache")


def git(cwd: Path, *args: str) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"git {' '.join(args)} failed: {result.stderr}"
    return result.stdout


# Like a GitHub-hosted runner: no global or system git configuration. The identity the test
# repositories commit with is set here, for the whole session (module- and session-scoped
# fixtures commit too), never taken from the machine.
TEST_GIT_ENV = {
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's hook signature
    os.environ.update(TEST_GIT_ENV)
    os.environ.pop("MODELCTL_ROOT", None)


@pytest.fixture(autouse=True)
def _no_root_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELCTL_ROOT", raising=False)


def bake_example(models_dir: Path, **answers: str) -> Path:
    """Bake a model from this checkout's template into ``models_dir`` (default answers: the example model)."""
    from cookiecutter.main import cookiecutter

    models_dir.mkdir(parents=True, exist_ok=True)
    return Path(
        cookiecutter(str(ROOT / "cookiecutter-model"), output_dir=str(models_dir), no_input=True, extra_context=answers)
    )


def copy_monorepo(repo: Path) -> Path:
    """Copy this monorepo's template, shared library and configs to ``repo``, bake the example model
    (`iris_classifier`) from the template, and commit it all."""
    for item in COPY:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=IGNORE)
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / item)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "platform")
    bake_example(repo / "models")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "example model")
    return repo


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    return copy_monorepo(tmp_path / "repo")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def assert_success(self) -> Result:
        assert self.code == 0, f"exit {self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        return self


Cli = Callable[..., Result]


@pytest.fixture
def cli(monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run `modelctl ARGS` in-process from inside the temp monorepo."""

    def run(*args: str) -> Result:
        monkeypatch.chdir(monorepo)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run
