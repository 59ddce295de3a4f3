"""Bake the model template the way users do and check what comes out."""

from __future__ import annotations

import filecmp
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from cookiecutter.main import cookiecutter

from modelkit import load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cookiecutter-model"
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "pytorch")
EXPECTED_FILES = {
    "README.md",
    "config.yaml",
    "requirements.txt",
    "requirements-dev.txt",
    "api_schema.py",
    "model_io.py",
    "train.py",
    "service.py",
    "locustfile.py",
    "sample_request.json",
    "queries/training.sql",
    "notebooks/{slug}.ipynb",
    "tests/conftest.py",
    "tests/test_train.py",
    "tests/test_service.py",
    "tests/test_notebook.py",
}
# What a baked model needs around it to lint and test as it would in the monorepo.
MONOREPO_FILES = ("pyproject.toml", "tox.ini", "toxfile.py")


def make_monorepo(path: Path) -> Path:
    for name in MONOREPO_FILES:
        shutil.copy2(ROOT / name, path / name)
    shutil.copytree(ROOT / "shared", path / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    (path / "models").mkdir()
    return path


@contextmanager
def bake_project(monorepo: Path, **answers: str) -> Iterator[Path]:
    """Bake into ``monorepo/models`` with cookiecutter's API, like `cookiecutter ... --no-input k=v`."""
    created = Path(
        cookiecutter(str(TEMPLATE), output_dir=str(monorepo / "models"), no_input=True, extra_context=answers)
    )
    try:
        yield created
    finally:
        shutil.rmtree(created, ignore_errors=True)


def files_of(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, check=False)


def nbstripout_args() -> list[str]:
    """The nbstripout arguments of the repo's pre-commit hook, so this test checks what the hook enforces."""
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hook = next(h for repo in config["repos"] for h in repo["hooks"] if h["id"] == "nbstripout")
    return shlex.split(hook["entry"])[1:]


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    return make_monorepo(tmp_path)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_bake_every_framework(monorepo: Path, framework: str) -> None:
    with bake_project(monorepo, model_name=f"Churn {framework}", framework=framework) as project:
        slug = f"churn_{framework}"
        assert project.name == slug
        assert files_of(project) == {f.format(slug=slug) for f in EXPECTED_FILES}

        for path in project.rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                assert "{{" not in text and "{%" not in text, f"unrendered Jinja in {path}"

        config = load_config(project / "config.yaml", check_folder_name=True)
        assert config.framework == framework

        requirements = (project / "requirements.txt").read_text()
        assert "bentoml==1.4." in requirements and "-e ../../shared" in requirements
        pins = [line for line in requirements.splitlines() if line and not line.startswith(("#", "-"))]
        assert all("==" in line for line in pins), pins

        ruff = [sys.executable, "-m", "ruff"]
        lint = run(*ruff, "check", "--no-cache", str(project), cwd=monorepo)
        assert lint.returncode == 0, lint.stdout
        formatted = run(*ruff, "format", "--check", "--no-cache", str(project), cwd=monorepo)
        assert formatted.returncode == 0, formatted.stdout
        notebook = project / "notebooks" / f"{slug}.ipynb"
        stripped = run(sys.executable, "-m", "nbstripout", "--verify", *nbstripout_args(), str(notebook), cwd=monorepo)
        assert stripped.returncode == 0, stripped.stdout + stripped.stderr


def test_example_model_has_not_drifted(monorepo: Path) -> None:
    committed = ROOT / "models" / "iris_classifier"
    with bake_project(monorepo) as baked:
        assert files_of(baked) == files_of(committed), "re-bake models/iris_classifier from the template"
        differ = [f for f in sorted(files_of(baked)) if not filecmp.cmp(baked / f, committed / f, shallow=False)]
        assert not differ, f"models/iris_classifier differs from the template in {differ}: re-bake it"


def _frameworks_to_run() -> list[str]:
    chosen = os.environ.get("MODEL_TEMPLATE_FRAMEWORKS", "sklearn")
    return list(FRAMEWORKS) if chosen == "all" else [f for f in chosen.split(",") if f]


@pytest.mark.slow
@pytest.mark.parametrize("framework", _frameworks_to_run())
def test_baked_model_passes_its_own_tests_and_fuzzing(monorepo: Path, framework: str) -> None:
    """Bake -> the model's own tests in its own env -> train, build and fuzz it with modelctl: zero 5xx."""
    result = run(
        sys.executable,
        "-m",
        "cookiecutter",
        str(TEMPLATE),
        "-o",
        "models",
        "--no-input",
        f"model_name=Fresh {framework}",
        f"framework={framework}",
        cwd=monorepo,
    )
    assert result.returncode == 0, result.stderr
    slug = f"fresh_{framework}"
    tox = run(
        sys.executable, "-m", "tox", "--workdir", str(monorepo / ".tox"), "run", "-e", f"model-{slug}", cwd=monorepo
    )
    assert tox.returncode == 0, tox.stdout[-4000:] + tox.stderr[-2000:]
    assert " passed" in tox.stdout

    shutil.copytree(TEMPLATE, monorepo / "cookiecutter-model", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "MODELCTL_ROOT": str(monorepo), "MODELCTL_STATE_DIR": str(monorepo / ".state")}
    env.pop("BENTOML_HOME", None)
    modelctl = [sys.executable, "-m", "modelctl.main"]
    for command in (["train", slug], ["build", slug], ["fuzz", slug, "--examples", "20"]):
        step = subprocess.run([*modelctl, *command], cwd=monorepo, capture_output=True, text=True, env=env, check=False)
        assert step.returncode == 0, f"modelctl {' '.join(command)}:\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    assert "5xx responses: 0" in step.stdout and "### Fuzz PASS" in step.stdout
