"""Small helpers for the delivery tests: edit a model temporarily, call its live service."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from modelctl.repo import Repo
from tests.conftest import MODEL


def predict(url: str, repo: Repo) -> list[dict[str, Any]]:
    sample = json.loads((repo.model_dir(MODEL) / "sample_request.json").read_text())
    response = httpx.post(f"{url}/predict", json=sample, timeout=10)
    assert response.status_code == 200, response.text
    return list(response.json())


def served_model(url: str) -> str:
    return str(httpx.post(f"{url}/metadata", json={}, timeout=10).json()["model"])


@contextmanager
def appended(path: Path, code: str) -> Iterator[None]:
    """``code`` added at the end of ``path`` for the block (later definitions win in Python)."""
    original = path.read_text()
    path.write_text(original + "\n" + code + "\n")
    try:
        yield
    finally:
        path.write_text(original)


@contextmanager
def config_changed(repo: Repo, **changes: Any) -> Iterator[Repo]:
    """``section__key=value`` set in the model's config.yaml for the block; yields a fresh Repo that sees it."""
    path = repo.model_dir(MODEL) / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        config.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        yield Repo(repo.root)
    finally:
        path.write_text(original)
