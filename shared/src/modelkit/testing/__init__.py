"""The pytest plugin every model's tests use: one line in ``tests/conftest.py``::

    pytest_plugins = ["modelkit.testing"]

It gives the tests a private BentoML store for the session (unless ``MODEL_TESTS_KEEP_BENTOML_HOME``
is set), the model folder on ``sys.path``, fixtures (``model_dir``, ``model_config``, ``trained``,
``service``, ``client``, ``sample``, ``openapi``) and the contract every model meets, whatever it
predicts (:mod:`modelkit.testing.contract`: training, the real ASGI app's answers and errors, the
OpenAPI document, the notebook). The contract is collected under ``tests/conftest.py``; select it
with ``-k`` like any test. The model's own test files hold what is its own (minimum metric, expected
predictions of the sample). Run pytest from the model folder or name its ``tests/`` folder.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from modelkit.config import ModelConfig
from modelkit.loader import load_config
from modelkit.samples import read_sample

PLUGIN = "modelkit.testing"
KEEP_HOME_ENV = "MODEL_TESTS_KEEP_BENTOML_HOME"
# Entity models (input: entity) test against a feature store of their own, in a temporary folder, with the SQLite
# online store: never the one MODEL_FEATURE_DATA or MODEL_FEATURE_ONLINE_STORE name (that may be production's Redis).
KEEP_FEATURES_ENV = "MODEL_TESTS_KEEP_FEATURE_STORE"
_FEATURES = pytest.StashKey[str]()
_MODEL_DIR = pytest.StashKey[Path]()
_CONFTEST = pytest.StashKey[Path]()
_HOME = pytest.StashKey[str]()


def _conftest_of_model(config: pytest.Config) -> Path | None:
    """The ``tests/conftest.py`` that enabled this plugin (its folder's parent is the model folder)."""
    for plugin in config.pluginmanager.get_plugins():
        file = getattr(plugin, "__file__", None)
        plugins = getattr(plugin, "pytest_plugins", ())
        if file and Path(file).name == "conftest.py" and PLUGIN in ([plugins] if isinstance(plugins, str) else plugins):
            return Path(file).resolve()
    return None


def pytest_configure(config: pytest.Config) -> None:
    conftest = _conftest_of_model(config)
    folder = conftest.parent.parent if conftest else Path.cwd().resolve()
    if not (folder / "config.yaml").is_file():
        raise pytest.UsageError(f"{PLUGIN}: no model folder (with config.yaml) above {conftest or Path.cwd()}")
    config.stash[_MODEL_DIR] = folder
    if conftest is not None:
        config.stash[_CONFTEST] = conftest
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    # Before bentoml is imported anywhere: tests never touch the user's model store.
    if KEEP_HOME_ENV not in os.environ:
        home = tempfile.mkdtemp(prefix="bentoml-test-")
        config.stash[_HOME] = home
        os.environ["BENTOML_HOME"] = home
    if load_config(folder / "config.yaml").input == "entity" and KEEP_FEATURES_ENV not in os.environ:
        from modelkit import features

        data = tempfile.mkdtemp(prefix="feature-store-test-")
        config.stash[_FEATURES] = data
        os.environ[features.DATA_ENV] = data
        os.environ[features.ONLINE_ENV] = "sqlite"


def pytest_unconfigure(config: pytest.Config) -> None:
    for key in (_HOME, _FEATURES):
        folder = config.stash.get(key, None)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)


class _Contract(pytest.Module):
    """The contract tests, collected as if they were written in the model's tests/conftest.py."""

    def _getobj(self) -> ModuleType:
        return importlib.import_module("modelkit.testing.contract")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    conftest = parent.config.stash.get(_CONFTEST, None)
    if conftest is not None and file_path.name == "conftest.py" and file_path.resolve() == conftest:
        contract: pytest.Collector = _Contract.from_parent(parent, path=file_path)
        return contract
    return None


@pytest.fixture(scope="session")
def model_dir(pytestconfig: pytest.Config) -> Path:
    """The model folder (config.yaml, train.py, service.py, ...)."""
    return pytestconfig.stash[_MODEL_DIR]


@pytest.fixture(scope="session")
def model_config(model_dir: Path) -> ModelConfig:
    return load_config(model_dir / "config.yaml")


@pytest.fixture(scope="session")
def trained() -> tuple[str, dict[str, float]]:
    """Train once per session with the model's ``train.train()``: (model tag, metrics)."""
    train = importlib.import_module("train")
    tag, metrics = train.train()
    return str(tag), dict(metrics)


@pytest.fixture(scope="session")
def service() -> Any:
    """The one BentoML service defined in the model's ``service.py`` (what `bentoml build` packages)."""
    import bentoml

    module = importlib.import_module("service")
    found = [value for value in vars(module).values() if isinstance(value, bentoml.Service)]
    assert len(found) == 1, f"service.py must define exactly one BentoML service, found {len(found)}"
    return found[0]


@pytest.fixture(scope="session")
def feature_store(model_dir: Path, model_config: ModelConfig) -> Path | None:
    """Entity models: the feature store's data folder, materialized once per session (None for other inputs)."""
    if model_config.input != "entity":
        return None
    from modelkit import features

    location = features.locate(start=model_dir)
    features.materialize(location, say=lambda _: None)
    return location.data


@pytest.fixture(scope="session")
def client(trained: tuple[str, dict[str, float]], service: Any, feature_store: Path | None) -> Iterator[Any]:
    """A test client of the real ASGI app: middleware and pydantic validation included."""
    from starlette.testclient import TestClient

    with TestClient(service.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def sample(model_dir: Path, model_config: ModelConfig) -> dict[str, Any]:
    """The model's example request (``loadtest.payload``: sample_request.json by default)."""
    return read_sample(model_dir, model_config.loadtest.payload)


@pytest.fixture(scope="session")
def openapi(client: Any) -> dict[str, Any]:
    """The service's OpenAPI document, as served at /docs.json."""
    response = client.get("/docs.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = json.loads(response.content)
    return document
