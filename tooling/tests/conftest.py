"""Fixtures: a temp monorepo as a real git repository, and an in-process CLI runner.

Platform tests never read the live ``models/`` folder: a monorepo copy holds the example model
baked fresh from the template, so adding models to this repository never changes what they see.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelctl.main import main
from modelctl.repo import Repo

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
    ".secrets.baseline",
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


@pytest.hookimpl(trylast=True)  # after pytest-randomly's shuffle, which it keeps within each group
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked slow (real servers, builds) first: on pytest-xdist workers the long ones start early and the
    short ones fill the end, instead of one long test starting last and holding the whole run."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _fast_tests_build_no_model_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make test-fast` (MODELCTL_TESTS_FAST=1) is the inner loop: a test that needs a model environment (to train,
    build, serve, fuzz or load-test) must be marked slow, or this fails it instead of letting the loop grow."""
    if not os.environ.get("MODELCTL_TESTS_FAST") or request.node.get_closest_marker("slow"):
        return
    from modelctl import envs

    def refuse(*_args: object, **_kwargs: object) -> Path:
        raise AssertionError(f"{request.node.nodeid} builds a model environment: mark it @pytest.mark.slow")

    monkeypatch.setattr(envs, "python_of", refuse)


@pytest.fixture(autouse=True)
def _hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts from a known environment, whatever CI or the developer's shell sets."""
    for name in (
        "MODELCTL_ROOT",
        "MODELCTL_STATE_DIR",
        "MODELCTL_STORE",
        "BENTOML_HOME",
        "CI",
        "GITHUB_ACTIONS",
        "GITHUB_OUTPUT",
        "GITHUB_STEP_SUMMARY",
        "SLACK_WEBHOOK_URL",
        "IRIS_CLASSIFIER_DATA_URL",
    ):
        monkeypatch.delenv(name, raising=False)


# Bakes into an empty models/ folder, once per answer set and session (a bake depends only on the answers, the
# template and the models beside it): later monorepos get a copy. Set by the session fixture below.
_BAKES: dict[tuple[tuple[str, str], ...], Path] = {}
_BAKE_DIR: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _bake_once_per_answer_set(tmp_path_factory: pytest.TempPathFactory) -> None:
    _BAKE_DIR.append(tmp_path_factory.mktemp("bakes"))


def bake_example(models_dir: Path, **answers: str) -> Path:
    """Bake a model from this checkout's template into ``models_dir`` (default answers: the example model)."""
    from cookiecutter.main import cookiecutter

    def bake(into: Path) -> Path:
        into.mkdir(parents=True, exist_ok=True)
        template = str(ROOT / "cookiecutter-model")
        return Path(cookiecutter(template, output_dir=str(into), no_input=True, extra_context=answers))

    alone = not (models_dir.is_dir() and any(models_dir.iterdir()))
    if not (alone and _BAKE_DIR):  # beside other models the hook picks other ports: a bake of its own
        return bake(models_dir)
    key = tuple(sorted(answers.items()))
    if key not in _BAKES:
        _BAKES[key] = bake(_BAKE_DIR[0] / str(len(_BAKES)))
    baked = _BAKES[key]
    models_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copytree(baked, models_dir / baked.name))


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
    example = bake_example(repo / "models")
    lock_like_this_repository(example)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "example model")
    return repo


def lock_like_this_repository(example: Path) -> None:
    """The example model's requirements.lock from this checkout, when the bake's requirements are the ones it
    was made from (the example model carries the committed template: they are); otherwise the bake stays unlocked."""
    from modelctl import lockfile

    committed = ROOT / "models" / example.name / lockfile.LOCK
    if committed.is_file():
        shutil.copy2(committed, example / lockfile.LOCK)
        if lockfile.status(example).state != "current":
            (example / lockfile.LOCK).unlink()


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


def cli_in(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """A runner of `modelctl ARGS`, in-process, from inside the monorepo at ``root``."""

    def run(*args: str) -> Result:
        monkeypatch.chdir(root)
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def cli(monorepo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Run `modelctl ARGS` in-process from inside the temp monorepo."""
    return cli_in(monorepo, capsys, monkeypatch)


# --- real delivery: one monorepo, model environment and trained, gate-passed bento per session -------------

MODEL = "iris_classifier"


def free_ports(count: int) -> list[int]:
    from modelctl import procs

    ports: set[int] = set()
    while len(ports) < count:
        ports.add(procs.free_port())
    return sorted(ports)


def fast_config(root: Path, model: str = MODEL) -> None:
    """A short load test with a few users and a latency limit no busy machine misses (the tests that are about
    the gate set their own), and free loopback ports (never a running demo's)."""
    import yaml

    path = root / "models" / model / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config.setdefault("loadtest", {}).update(users=8, spawn_rate=8, duration_s=3, max_p90_ms=10_000)
    config.setdefault("deploy", {})["watch"] = {"duration_s": 2, "interval_s": 1}
    ports = free_ports(3)
    config.setdefault("serving", {})["ports"] = dict(zip(("dev", "staging", "production"), ports, strict=True))
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="session")
def delivery_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A monorepo whose example model has a fast load test and free ports; everything deployed is stopped."""
    from modelctl.repo import Repo
    from modelctl.targets import local

    root = copy_monorepo(tmp_path_factory.mktemp("deliver") / "repo")
    fast_config(root)
    git(root, "commit", "-qam", "fast load test, free ports")
    try:
        yield root
    finally:
        for env_dir in (root / ".modelctl" / "deploy" / MODEL).glob("*"):
            local.undeploy(Repo(root), MODEL, env_dir.name)


@pytest.fixture
def delivery(delivery_root: Path, monkeypatch: pytest.MonkeyPatch) -> Repo:
    """The delivery monorepo as a fresh Repo; CLI calls (`main([...])`) run inside it."""
    from modelctl.repo import Repo

    monkeypatch.chdir(delivery_root)
    return Repo(delivery_root)


@pytest.fixture(scope="session")
def gated(delivery_root: Path) -> tuple[str, str]:
    """(model tag, bento) trained, built and verified (load-test gate + fuzz) once per session."""
    from modelctl.delivery import build, promote, train
    from modelctl.delivery.stages import StageLog
    from modelctl.repo import Repo

    model = Repo(delivery_root).model(MODEL)
    model_tag = train.train(model).model_tag
    bento = build.build(model).bento
    promote.verify(model, bento, StageLog("gated", []), examples=10)
    return model_tag, bento


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 for the session; tests point at it with tests.s3_stand_in.use_s3."""
    from tests.s3_stand_in import moto_server

    with moto_server() as endpoint:
        yield endpoint
