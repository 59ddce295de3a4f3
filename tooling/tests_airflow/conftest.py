"""As in tooling/tests: no machine git configuration; the test repositories' identity comes from here."""

from __future__ import annotations

import os

import pytest

from tests.conftest import TEST_GIT_ENV


def pytest_configure(config: pytest.Config) -> None:  # noqa: ARG001 - pytest's hook signature
    os.environ.update(TEST_GIT_ENV)
