"""modelkit.features: the shared Feast repository, its online stores (SQLite, a real Redis) and training frames."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelkit import features

sys.path.insert(0, str(Path(__file__).parent))
import redis_server  # noqa: E402 - the helper beside this file

ROOT = Path(__file__).resolve().parents[2]
REPO = ROOT / "shared" / "feature_repo"
VIEW = "customer_stats"
NAMES = ("tenure_months", "monthly_spend", "support_tickets_30d", "logins_30d")
REFS = [f"{VIEW}:{name}" for name in NAMES]
END = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_feature_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (features.REPO_ENV, features.DATA_ENV, features.ONLINE_ENV):
        monkeypatch.delenv(name, raising=False)


def latest_snapshots(data: Path) -> Any:
    import pandas as pd

    stats = pd.read_parquet(data / "customer_stats.parquet")
    return stats.sort_values("event_timestamp").groupby("customer_id").tail(1).set_index("customer_id")


# --- where the store is ------------------------------------------------------------------------------------------


def test_the_monorepo_repository_is_found_from_below_it_and_its_data_is_outside_shared(tmp_path: Path) -> None:
    location = features.locate(start=ROOT / "models")
    assert location.repo == REPO
    assert location.data == ROOT / ".feast"  # model environments are keyed by shared/'s files: not in there
    assert location.online == "" and location.online_description == f"sqlite {ROOT / '.feast' / 'online_store.db'}"
    assert features.default_data(tmp_path) == tmp_path.resolve() / "data"


def test_the_environment_chooses_repository_data_and_online_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(features.REPO_ENV, str(REPO))
    monkeypatch.setenv(features.DATA_ENV, str(tmp_path / "data"))
    monkeypatch.setenv(features.ONLINE_ENV, "redis://:secret@cache.internal:6380/2")
    location = features.locate(start=tmp_path)
    assert (location.repo, location.data) == (REPO, tmp_path / "data")
    assert location.online_description == "redis cache.internal:6380"  # never the password
    monkeypatch.setenv(features.ONLINE_ENV, "SQLite")
    assert features.locate(start=tmp_path).online == ""


def test_no_repository_is_one_line_naming_the_variable(tmp_path: Path) -> None:
    with pytest.raises(features.FeatureStoreError, match=f"set {features.REPO_ENV}"):
        features.locate(start=tmp_path)
    with pytest.raises(features.FeatureStoreError, match=f"{tmp_path}.* has no feature_store.yaml"):
        features.locate(repo=tmp_path)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6390", "127.0.0.1:6390,db=0"),
        ("redis://cache/3", "cache:6379,db=3"),
        ("redis://:p%40ss@cache:1234/1", 'cache:1234,db=1,password="p@ss"'),  # pragma: allowlist secret
        ("redis://reader:pw@cache:1234", 'cache:1234,db=0,password="pw",username="reader"'),  # pragma: allowlist secret
        # Feast reads each value as JSON: a password that looks like a number or a boolean stays a string
        ("redis://:1e3@cache:1234", 'cache:1234,db=0,password="1e3"'),  # pragma: allowlist secret
        ("rediss://cache:6380/0", "cache:6380,db=0,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(url: str, expected: str) -> None:
    timeouts = f"socket_timeout={features.REDIS_TIMEOUT_S},socket_connect_timeout={features.REDIS_TIMEOUT_S}"
    host, db, *rest = expected.split(",")
    assert features.redis_connection(url) == ",".join([host, db, timeouts, *rest])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://cache:6379", "must be `sqlite` or a URL redis://"),
        ("cache:6379", "must be `sqlite` or a URL redis://"),
        ("redis://cache:port/0", "must be numbers"),
        ("redis://cache:6379/zero", "must be numbers"),
        ("hunter2secretpw@redis.internal:6379/0", "whose scheme is 'none'"),
        ("redis://:pw@redis.internal:S3cretPort", "must be numbers"),
        ("redis://:a,b@cache:6379/0", "contains a comma"),
    ],
)
def test_a_bad_online_store_value_is_refused_without_showing_it(url: str, message: str) -> None:
    with pytest.raises(features.FeatureStoreError, match=message) as raised:
        features.locate(repo=REPO, online=url)
    assert "a,b" not in str(raised.value) and "hunter2" not in str(raised.value) and "S3cret" not in str(raised.value)


def test_times_are_iso_or_now_and_utc_without_a_zone() -> None:
    assert features.parse_time("2026-11-01T12:00") == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert features.parse_time("now").tzinfo is not None
    with pytest.raises(features.FeatureStoreError, match="'yesterday' is not a time"):
        features.parse_time("yesterday")


@pytest.mark.slow
def test_feature_store_yaml_problems_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "feature_store.yaml").write_text("- not a mapping\n")
    location = features.locate(repo=tmp_path, data=tmp_path / "data")
    with pytest.raises(features.FeatureStoreError, match=r"feature_store.yaml: expected a mapping"):
        features.repo_config(location)
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump({"project": "p", "online_store": {"type": "redis"}}))
    with pytest.raises(features.FeatureStoreError, match="online_store must be `type: sqlite`"):
        features.repo_config(location)
    (tmp_path / "feature_store.yaml").write_text(yaml.safe_dump({"project": "p", "provider": 5}))
    with pytest.raises(features.FeatureStoreError, match=r"feature_store.yaml: "):
        features.repo_config(location)


# --- the example data --------------------------------------------------------------------------------------------


def test_the_offline_data_is_deterministic(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    generator = features._repo_module(REPO, "generate")
    first = generator.generate(tmp_path / "a")
    second = generator.generate(tmp_path / "b")
    for one, other in zip(first, second, strict=True):
        assert pq.read_table(one).equals(pq.read_table(other)), one.name
    stats = pq.read_table(first[0]).to_pandas()
    assert stats.customer_id.nunique() == generator.CUSTOMERS and stats.notna().all().all()
    assert not list(tmp_path.rglob("*.partial"))


# --- SQLite: materialize, look up, train ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sqlite_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[features.Location, Any]]:
    location = features.locate(repo=REPO, data=tmp_path_factory.mktemp("feast"), online="sqlite")
    lines: list[str] = []
    views = features.materialize(location, END, say=lines.append)
    assert views == [VIEW]
    assert any(line.startswith("generated the offline data") for line in lines), lines
    assert f"materialized {VIEW}" in "\n".join(lines)
    yield location, features.open_store(location)


@pytest.mark.slow
def test_online_features_are_each_customers_latest_snapshot(sqlite_store: tuple[features.Location, Any]) -> None:
    location, store = sqlite_store
    latest = latest_snapshots(location.data)
    ids = [1000, 1499, 1234]
    matrix = features.online_matrix(store, REFS, "customer_id", ids)
    assert matrix.shape == (3, len(NAMES)) and matrix.dtype.kind == "f"
    for row, customer in enumerate(ids):
        assert matrix[row].tolist() == pytest.approx([float(latest.loc[customer, name]) for name in NAMES])


@pytest.mark.slow
def test_unknown_ids_are_named(sqlite_store: tuple[features.Location, Any]) -> None:
    _, store = sqlite_store
    with pytest.raises(features.UnknownEntities) as raised:
        features.online_matrix(store, REFS, "customer_id", [1000, 7, *range(10, 20)])
    assert raised.value.ids == [7, *range(10, 20)]
    assert str(raised.value) == "customer_id 7, 10, 11, 12, 13 and 6 more have no features in the feature store"


@pytest.mark.slow
def test_an_id_missing_one_feature_is_unknown_not_a_nan(sqlite_store: tuple[features.Location, Any]) -> None:
    """A row the online store holds only part of would reach the model as NaN (a 500): it is an unknown id."""
    import sqlite3

    location, store = sqlite_store
    [database] = location.data.glob("online_store.db")
    with sqlite3.connect(database) as connection:
        [table] = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                   if name.endswith(VIEW)]  # fmt: skip
        row = connection.execute(
            f"SELECT rowid, * FROM {table} WHERE feature_name = ? LIMIT 1", (NAMES[-1],)
        ).fetchone()
        connection.execute(f"DELETE FROM {table} WHERE rowid = ?", (row[0],))
    try:
        ids = list(range(1000, 1500))
        response = store.get_online_features(features=[REFS[-1]], entity_rows=[{"customer_id": i} for i in ids])
        [lost] = [i for i, v in zip(ids, response.to_dict()[NAMES[-1]], strict=True) if v is None]
        with pytest.raises(features.UnknownEntities) as raised:
            features.online_matrix(store, REFS, "customer_id", [1000, lost])
        assert raised.value.ids == [lost]
    finally:
        with sqlite3.connect(database) as connection:
            columns = ", ".join("?" for _ in row[1:])
            connection.execute(f"INSERT INTO {table} VALUES ({columns})", row[1:])


@pytest.mark.slow
def test_training_frames_are_point_in_time_correct(sqlite_store: tuple[features.Location, Any]) -> None:
    import pandas as pd

    location, store = sqlite_store
    labels = pd.read_parquet(location.data / "customer_labels.parquet")
    frame = features.training_frame(store, labels, REFS)
    assert len(frame) >= 0.95 * len(labels) and frame.notna().all().all()
    stats = pd.read_parquet(location.data / "customer_stats.parquet").sort_values("event_timestamp")
    stats["event_timestamp"] = stats.event_timestamp.astype(frame.event_timestamp.dtype)
    expected = pd.merge_asof(
        frame[["customer_id", "event_timestamp"]].sort_values("event_timestamp"),
        stats,
        on="event_timestamp",
        by="customer_id",
        direction="backward",
    ).sort_values(["customer_id", "event_timestamp"])
    for name in NAMES:
        assert frame[name].tolist() == pytest.approx(expected[name].tolist()), name
    # A join with each customer's latest snapshot (what the online store holds) would differ: the test can fail.
    latest = latest_snapshots(location.data)
    assert (frame.logins_30d.to_numpy() != latest.loc[frame.customer_id, "logins_30d"].to_numpy()).mean() > 0.5


@pytest.mark.slow
def test_materializing_again_is_idempotent(sqlite_store: tuple[features.Location, Any]) -> None:
    location, store = sqlite_store
    before = features.online_matrix(store, REFS, "customer_id", [1000, 1001])
    lines: list[str] = []
    assert features.materialize(location, END, say=lines.append) == [VIEW]
    assert not any(line.startswith("generated") for line in lines)  # the offline data is kept
    assert (features.online_matrix(features.open_store(location), REFS, "customer_id", [1000, 1001]) == before).all()


# --- Redis: the production online store ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if redis_server.binary() is None:
        (pytest.fail if redis_server.IN_CI else pytest.skip)(redis_server.INSTALL)
    with redis_server.redis_server(password="s3cret-pw") as url:  # pragma: allowlist secret
        yield url


@pytest.mark.slow
def test_redis_online_store_serves_what_was_materialized(
    redis_url: str, sqlite_store: tuple[features.Location, Any], tmp_path: Path
) -> None:
    import redis

    location = features.locate(repo=REPO, data=tmp_path, online=redis_url)
    assert location.online_description.startswith("redis 127.0.0.1:")
    assert features.materialize(location, END, say=lambda _: None) == [VIEW]
    assert redis.Redis.from_url(redis_url).dbsize() > 0
    store = features.open_store(location)
    ids = [1000, 1001, 1450]
    from_redis = features.online_matrix(store, REFS, "customer_id", ids)
    assert (from_redis == features.online_matrix(sqlite_store[1], REFS, "customer_id", ids)).all()
    with pytest.raises(features.UnknownEntities, match="customer_id 999 has no features"):
        features.online_matrix(store, REFS, "customer_id", [999])


@pytest.mark.slow
def test_unreachable_redis_is_one_line_naming_it_without_the_password(redis_url: str, tmp_path: Path) -> None:
    wrong_port = redis_url.replace(redis_url.rsplit(":", 1)[1].split("/")[0], "1")
    location = features.locate(repo=REPO, data=tmp_path, online=wrong_port)
    with pytest.raises(features.FeatureStoreError) as raised:
        features.materialize(location, END, say=lambda _: None)
    message = str(raised.value)
    assert message.startswith("cannot reach the Redis online store at 127.0.0.1:1 (MODEL_FEATURE_ONLINE_STORE)")
    assert "s3cret" not in message and "\n" not in message
    assert not (tmp_path / "registry.db").exists()  # it failed before applying anything


@pytest.mark.slow
def test_the_command_line_reports_errors_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert features.main(["materialize", "--repo", str(tmp_path)]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path} is not a feature repository: it has no feature_store.yaml\n"
    monkeypatch.setenv(features.DATA_ENV, str(tmp_path / "data"))
    assert features.main(["materialize", "--repo", str(REPO), "--end", "2026-12-01"]) == 0
    output = capsys.readouterr().out
    assert output.rstrip().endswith(
        f"materialized 1 feature view(s) into sqlite {tmp_path / 'data' / 'online_store.db'}"
    )


@pytest.mark.slow
def test_a_service_store_is_checked_at_start_up(sqlite_store: tuple[features.Location, Any], tmp_path: Path) -> None:
    location, _ = sqlite_store
    store = features.open_online(location, REFS)
    assert features.online_matrix(store, REFS, "customer_id", [1000]).shape == (1, len(NAMES))
    empty = features.locate(repo=REPO, data=tmp_path, online="sqlite")
    with pytest.raises(
        features.FeatureStoreError, match=r"no feature registry at .*: run `modelctl features materialize`"
    ):
        features.open_online(empty, REFS)
    with pytest.raises(
        features.FeatureStoreError, match=r"has no feature view 'orders'.*modelctl features materialize"
    ):
        features.open_online(location, [*REFS, "orders:total"])
    unreachable = features.locate(repo=REPO, data=location.data, online="redis://127.0.0.1:1/0")
    with pytest.raises(features.FeatureStoreError, match=r"cannot reach the Redis online store at 127.0.0.1:1"):
        features.open_online(unreachable, REFS)


@pytest.mark.slow
def test_a_lookup_while_redis_is_down_is_unavailable_not_unknown(tmp_path: Path) -> None:
    if redis_server.binary() is None:
        (pytest.fail if redis_server.IN_CI else pytest.skip)(redis_server.INSTALL)
    with redis_server.redis_server() as url:
        location = features.locate(repo=REPO, data=tmp_path, online=url)
        features.materialize(location, END, say=lambda _: None)
        store = features.open_online(location, REFS)
        assert features.online_matrix(store, REFS, "customer_id", [1000]).shape == (1, len(NAMES))
    with pytest.raises(features.FeatureStoreUnavailable, match="the online store did not answer: .*127.0.0.1"):
        features.online_matrix(store, REFS, "customer_id", [1000])
