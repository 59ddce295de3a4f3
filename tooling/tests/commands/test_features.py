"""`modelctl features materialize`: the shared feature repository applied and loaded, in the platform's Feast
environment, into SQLite or a real Redis; bad input is one line."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT, Cli


def _redis_helper() -> ModuleType:
    # One Redis fixture for both suites: shared/tests/redis_server.py (redis-server on a free 127.0.0.1 port).
    spec = importlib.util.spec_from_file_location("redis_server", ROOT / "shared" / "tests" / "redis_server.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


redis_server = _redis_helper()


@pytest.fixture(autouse=True)
def _feature_store_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MODEL_FEATURE_DATA", str(tmp_path / "feast"))
    monkeypatch.delenv("MODEL_FEATURE_ONLINE_STORE", raising=False)
    monkeypatch.delenv("MODEL_FEATURE_REPO", raising=False)
    return tmp_path / "feast"


def test_a_missing_repository_is_one_line_naming_it(cli: Cli, tmp_path: Path) -> None:
    result = cli("features", "materialize", "--repo", str(tmp_path / "nowhere"))
    assert result.code == 1
    assert result.err == (
        f"modelctl features: error: feature repository {tmp_path / 'nowhere'} does not exist "
        "(--repo, default shared/feature_repo)\n"
    )


def test_a_folder_without_feature_store_yaml_is_not_a_repository(cli: Cli, tmp_path: Path) -> None:
    result = cli("features", "materialize", "--repo", str(tmp_path))
    assert result.code == 1
    assert result.err.strip().endswith(f"{tmp_path} is not a feature repository: it has no feature_store.yaml")


def test_times_are_checked_before_anything_runs(cli: Cli) -> None:
    result = cli("features", "materialize", "--end", "yesterday")
    assert result.code == 2 and "argument --end: 'yesterday' is not a time" in result.err
    result = cli("features", "materialize", "--start", "2026-12-01", "--end", "2026-11-01")
    assert result.code == 2 and "--start 2026-12-01T00:00:00+00:00 must be before --end" in result.err


@pytest.mark.slow
def test_materialize_applies_and_loads_the_sqlite_online_store(cli: Cli, _feature_store_in_tmp: Path) -> None:
    result = cli("features", "materialize", "--end", "2026-12-01T00:00").assert_success()
    data = _feature_store_in_tmp
    assert "generated the offline data: customer_stats.parquet, customer_labels.parquet" in result.err
    assert "materializing customer_stats: 2024-12-01T00:00:00+00:00 -> 2026-12-01T00:00:00+00:00" in result.err
    assert f"materialized 1 feature view(s) into sqlite {data / 'online_store.db'}" in result.err
    assert "\x1b" not in result.err  # Feast's coloured progress is replaced by modelctl's lines
    assert {p.name for p in data.iterdir()} >= {"registry.db", "online_store.db", "customer_stats.parquet"}
    assert (data / "online_store.db").stat().st_size > 10_000
    again = cli("features", "materialize", "--end", "2026-12-01T00:00").assert_success()
    assert "generated" not in again.err


@pytest.fixture
def redis_url() -> Iterator[str]:
    if redis_server.binary() is None:
        (pytest.fail if redis_server.IN_CI else pytest.skip)(redis_server.INSTALL)
    with redis_server.redis_server(password="materialize-pw") as url:  # pragma: allowlist secret
        yield url


@pytest.mark.slow
def test_materialize_into_a_real_redis(cli: Cli, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODEL_FEATURE_ONLINE_STORE", redis_url)
    assert redis_server.dbsize(redis_url) == 0
    result = cli("features", "materialize", "--end", "2026-12-01").assert_success()
    assert "online store redis 127.0.0.1:" in result.err and "materialize-pw" not in result.err
    assert redis_server.dbsize(redis_url) == 500  # one hash per customer


@pytest.mark.slow
def test_unreachable_redis_is_one_line_and_exit_1(cli: Cli, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    port = redis_url.rsplit(":", 1)[1].split("/")[0]
    monkeypatch.setenv("MODEL_FEATURE_ONLINE_STORE", redis_url.replace(f":{port}/", ":1/"))
    result = cli("features", "materialize")
    assert result.code == 1
    errors = [line for line in result.err.splitlines() if "error" in line]
    assert errors == [
        "modelctl features: error: cannot reach the Redis online store at 127.0.0.1:1 (MODEL_FEATURE_ONLINE_STORE): "
        "Error 111 connecting to 127.0.0.1:1. Connection refused."
    ]
    assert "materialize-pw" not in result.err


def test_for_a_model_without_entity_input_there_is_nothing_to_do(cli: Cli) -> None:
    result = cli("features", "materialize", "--models", "iris_classifier").assert_success()
    assert result.err == "iris_classifier: no entity model among them (config.yaml input): nothing to materialize\n"
    assert cli("features", "materialize", "--models", "no_such_model").code == 2


@pytest.mark.slow
def test_for_an_entity_model_the_store_is_loaded(cli: Cli, monorepo: Path, _feature_store_in_tmp: Path) -> None:
    from tests.conftest import bake_example

    bake_example(monorepo / "models", model_name="Churn Scorer", input="entity")
    # CI's shards name several models: the store is loaded when one of them is an entity model
    result = cli("features", "materialize", "--models", "iris_classifier,churn_scorer", "--end", "2026-12-01")
    result.assert_success()
    assert "materialized 1 feature view(s) into sqlite" in result.err
    assert (_feature_store_in_tmp / "online_store.db").is_file()
