"""Fixtures: a temp copy of the monorepo as a real git repository, and an in-process CLI runner."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelctl.main import main

ROOT = Path(__file__).resolve().parents[2]
# What a monorepo copy needs for modelctl, pre-commit and tox to behave as in the real one.
COPY = (
    "cookiecutter-model",
    "shared",
    "models",
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


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }.items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("MODELCTL_ROOT", raising=False)


def copy_monorepo(repo: Path) -> Path:
    """Copy this monorepo's template, shared library, models and configs to ``repo`` and commit them."""
    for item in COPY:
        source = ROOT / item
        if source.is_dir():
            shutil.copytree(source, repo / item, ignore=IGNORE)
        else:
            (repo / item).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / item)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
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
