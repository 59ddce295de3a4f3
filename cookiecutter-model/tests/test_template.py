"""Bake the model template the way users do and check what comes out."""

from __future__ import annotations

import ast
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from cookiecutter.main import cookiecutter

from modelkit import FRAMEWORKS, TASKS, load_config

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "cookiecutter-model"
EXPECTED_FILES = {
    ".template.json",
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


# What a data scientist changes in a baked folder; every other line is platform code, the same in
# every model but for names (the goal of issue 12: under half of a folder's Python lines).
MODEL_OWNED_FILES = {"api_schema.py", "model_io.py", "tests/test_train.py", "tests/test_service.py"}
MODEL_OWNED_DEFS = {
    "train.py": {"Dataset", "load_data", "split", "build_model", "fit", "evaluate"},
    # and the service class: its start-up and endpoints are the data scientist's (issue 21)
    "service.py": {"preprocess", "postprocess", "{service_class}"},
}


def python_lines(folder: Path) -> dict[str, tuple[int, int]]:
    """(platform lines, model-owned lines) of each Python file of a model folder."""
    split: dict[str, tuple[int, int]] = {}
    service_class = folder.name.title().replace("_", "")
    for path in sorted(folder.rglob("*.py")):
        name = str(path.relative_to(folder))
        text = path.read_text(encoding="utf-8")
        total = len(text.splitlines())
        owned = total if name in MODEL_OWNED_FILES else 0
        owned_defs = {d.format(service_class=service_class) for d in MODEL_OWNED_DEFS.get(name, ())}
        for node in ast.parse(text).body if name in MODEL_OWNED_DEFS else []:
            if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.name in owned_defs:
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                owned += (node.end_lineno or node.lineno) - first + 1
        split[name] = (total - owned, owned)
    return split


def load_rules() -> ModuleType:
    """The template's rules (hooks/model_template.py): which input kinds come with which frameworks and tasks."""
    spec = importlib.util.spec_from_file_location("model_template_rules", TEMPLATE / "hooks/model_template.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RULES = load_rules()
# Every framework x task x input combination the template bakes (tabular: all; text, image, entity: INPUT_EXAMPLES).
BAKES = [(framework, task, "tabular") for framework in FRAMEWORKS for task in TASKS] + [
    (framework, task, kind)
    for kind, (frameworks, tasks) in RULES.INPUT_EXAMPLES.items()
    for framework in frameworks
    for task in tasks
]


@pytest.mark.parametrize(("framework", "task", "kind"), BAKES)
def test_bake_every_framework_task_and_input(monorepo: Path, framework: str, task: str, kind: str) -> None:
    name = f"Churn {framework} {task}" + ("" if kind == "tabular" else f" {kind}")
    with bake_project(monorepo, model_name=name, framework=framework, task=task, input=kind) as project:
        slug = name.lower().replace(" ", "_")
        assert project.name == slug
        expected = EXPECTED_FILES if kind == "tabular" else EXPECTED_FILES - {"queries/training.sql"}
        assert files_of(project) == {f.format(slug=slug) for f in expected}

        for path in project.rglob("*"):
            if path.is_file():
                text = path.read_text(encoding="utf-8")
                assert "{{" not in text and "{%" not in text, f"unrendered Jinja in {path}"

        config = load_config(project / "config.yaml", check_folder_name=True)
        assert (config.framework, config.task, config.input) == (framework, task, kind)

        requirements = (project / "requirements.txt").read_text()
        assert "bentoml==1.4." in requirements and "-e ../../shared" in requirements
        pins = [line for line in requirements.splitlines() if line and not line.startswith(("#", "-"))]
        assert all("==" in line for line in pins), pins

        schema, train = (project / "api_schema.py").read_text(), (project / "train.py").read_text()
        if kind != "tabular":
            assert "probabilities: dict[str, float]" in schema and '"accuracy"' in train
        elif task == "regression":
            assert "value: float" in schema and "CLASS_NAMES" not in schema + train
            assert '"rmse"' in train and '"mae"' in train and '"r2"' in train and "load_diabetes" in train
        else:
            assert "probabilities: dict[str, float]" in schema and '"accuracy"' in train
        service = (project / "service.py").read_text()
        # visibly a BentoML service class, its model call off the event loop (issue 21)
        assert f"@bentoml.service(**service_settings(CONFIG))\nclass {config.name.title().replace('_', '')}(" in service
        assert '@bentoml.api(route="/predict"' in service and "await self.in_thread(model_io.predict" in service
        assert (project / "tests" / "conftest.py").read_text().startswith('pytest_plugins = ["modelkit.testing"]')

        lines = python_lines(project)
        platform, owned = sum(p for p, _ in lines.values()), sum(o for _, o in lines.values())
        assert platform < owned, f"platform {platform} vs model-owned {owned} Python lines: {lines}"

        ruff = [sys.executable, "-m", "ruff"]
        lint = run(*ruff, "check", "--no-cache", str(project), cwd=monorepo)
        assert lint.returncode == 0, lint.stdout
        formatted = run(*ruff, "format", "--check", "--no-cache", str(project), cwd=monorepo)
        assert formatted.returncode == 0, formatted.stdout
        notebook = project / "notebooks" / f"{slug}.ipynb"
        stripped = run(sys.executable, "-m", "nbstripout", "--verify", *nbstripout_args(), str(notebook), cwd=monorepo)
        assert stripped.returncode == 0, stripped.stdout + stripped.stderr


def test_every_model_of_this_repository_carries_the_committed_template() -> None:
    """What CI runs when the template changes: a model behind it fails until `modelctl upgrade` merges it."""
    result = run(sys.executable, "-m", "modelctl.main", "upgrade", "--all", "--check", cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _bakes_to_run() -> list[tuple[str, str, str]]:
    """MODEL_TEMPLATE_FRAMEWORKS (default sklearn; all), MODEL_TEMPLATE_TASKS, MODEL_TEMPLATE_INPUTS (default every
    input kind: text, image and entity models exist for the frameworks and tasks of the template's INPUT_EXAMPLES)."""
    chosen = os.environ.get("MODEL_TEMPLATE_FRAMEWORKS", "sklearn")
    frameworks = list(FRAMEWORKS) if chosen == "all" else [f for f in chosen.split(",") if f]
    tasks = [t for t in os.environ.get("MODEL_TEMPLATE_TASKS", ",".join(TASKS)).split(",") if t]
    kinds = [k for k in os.environ.get("MODEL_TEMPLATE_INPUTS", "tabular,text,image,entity").split(",") if k]
    return [bake for bake in BAKES if bake[0] in frameworks and bake[1] in tasks and bake[2] in kinds]


@pytest.mark.slow
@pytest.mark.parametrize(("framework", "task", "kind"), _bakes_to_run())
def test_baked_model_passes_its_own_tests_and_fuzzing(monorepo: Path, framework: str, task: str, kind: str) -> None:
    """Bake -> the model's own tests and the modelkit contract in its own env -> train, build and fuzz it."""
    result = run(
        sys.executable,
        "-m",
        "cookiecutter",
        str(TEMPLATE),
        "-o",
        "models",
        "--no-input",
        f"model_name=Fresh {framework} {task} {kind}",
        f"framework={framework}",
        f"task={task}",
        f"input={kind}",
        cwd=monorepo,
    )
    assert result.returncode == 0, result.stderr
    slug = f"fresh_{framework}_{task}_{kind}"
    config = load_config(monorepo / "models" / slug / "config.yaml")
    assert (config.task, config.input) == (task, kind)
    tox = run(
        sys.executable, "-m", "tox", "--workdir", str(monorepo / ".tox"), "run", "-e", f"model-{slug}", cwd=monorepo
    )
    assert tox.returncode == 0, tox.stdout[-4000:] + tox.stderr[-2000:]
    assert " passed" in tox.stdout

    shutil.copytree(TEMPLATE, monorepo / "cookiecutter-model", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "MODELCTL_ROOT": str(monorepo), "MODELCTL_STATE_DIR": str(monorepo / ".state")}
    env.pop("BENTOML_HOME", None)
    # modelctl builds its model environments itself (not through tox): from the suites' shared cache
    # (MODELCTL_ENV_CACHE), where every bake with the same requirements finds the one already built.
    modelctl = [sys.executable, "-m", "modelctl.main"]
    commands = [["train", slug], ["build", slug], ["fuzz", slug, "--examples", "20"]]
    if kind == "entity":
        # The served bento reads the shared feature store (.feast/ of the monorepo): loaded first, as in a checkout.
        env.pop("MODEL_FEATURE_DATA", None)
        env.pop("MODEL_FEATURE_ONLINE_STORE", None)
        commands.insert(0, ["features", "materialize"])
    for command in commands:
        step = subprocess.run([*modelctl, *command], cwd=monorepo, capture_output=True, text=True, env=env, check=False)
        assert step.returncode == 0, f"modelctl {' '.join(command)}:\n{step.stdout[-3000:]}\n{step.stderr[-3000:]}"
    assert "5xx responses: 0" in step.stdout and "### Fuzz PASS" in step.stdout
    if kind == "entity":
        assert (monorepo / ".feast" / "online_store.db").is_file()
        assert not list((monorepo / "shared").rglob("*.parquet")), "generated feature data must stay out of shared/"
