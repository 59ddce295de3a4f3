"""Fixtures: a private BentoML store per test session, a trained model, the ASGI app."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

MODEL_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(MODEL_DIR))


def pytest_configure(config: pytest.Config) -> None:
    # Before bentoml is imported anywhere: tests never touch the user's model store.
    if "MODEL_TESTS_KEEP_BENTOML_HOME" not in os.environ:
        home = tempfile.mkdtemp(prefix="bentoml-test-")
        config.stash[_HOME] = home
        os.environ["BENTOML_HOME"] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home = config.stash.get(_HOME, None)
    if home:
        shutil.rmtree(home, ignore_errors=True)


_HOME = pytest.StashKey[str]()


@pytest.fixture(scope="session")
def trained() -> tuple[str, dict[str, float]]:
    """Train once per session; (model tag, metrics)."""
    import train

    return train.train()


@pytest.fixture(scope="session")
def client(trained: tuple[str, dict[str, float]]) -> Iterator[Any]:
    """A test client of the real ASGI app: pydantic validation and middleware included."""
    from starlette.testclient import TestClient

    import service

    with TestClient(service.IrisClassifier.to_asgi(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def sample() -> dict[str, Any]:
    return json.loads((MODEL_DIR / "sample_request.json").read_text())
