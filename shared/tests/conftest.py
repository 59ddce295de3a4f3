from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["pytester"]

_HOME = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    # Before bentoml is imported: tests that build services never touch the user's model store.
    home = tempfile.mkdtemp(prefix="bentoml-shared-tests-")
    config.stash[_HOME] = home
    os.environ["BENTOML_HOME"] = home
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "true")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(config.stash[_HOME], ignore_errors=True)
