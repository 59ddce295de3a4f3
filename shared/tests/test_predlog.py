"""The prediction log: columns, sampling, sensitive fields, the bounded buffer and a store that is slow or down."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel, Field

from modelkit import predlog
from modelkit.loader import parse_config
from modelkit.training import reference_table

CLASSES = ("setosa", "versicolor")


class Row(BaseModel):
    length: float
    colour: str
    pixels: list[float]
    email: str
    card: str


def row(i: int = 0) -> Row:
    return Row(length=float(i), colour="red", pixels=[0.0, 1.0, 2.0, 3.0], email=f"user{i}@example.com", card="4111")


def parts(root: Path) -> list[Path]:
    return sorted(root.glob("predictions/*/*/*/*.parquet"))


def new_log(root: Path, **options: Any) -> tuple[predlog.PredictionLog, list[tuple[str, int]]]:
    drops: list[tuple[str, int]] = []
    settings: dict[str, Any] = {"model": "m", "env": "staging", "version": "m:v1", "classes": CLASSES, "start": False}
    settings.update(options)
    log = predlog.PredictionLog(predlog.Destination(str(root)), on_drop=lambda r, n: drops.append((r, n)), **settings)
    return log, drops


def test_rows_and_predictions_become_columns_with_sensitive_fields_dropped_or_hashed(tmp_path: Path) -> None:
    log, drops = new_log(tmp_path, sensitive={"email": "drop", "card": "hash"}, salt="pepper")
    log.record([row(1), row(2)], np.array([[0.9, 0.1], [0.3, 0.7]]))
    assert log.flush() == 2
    [part] = parts(tmp_path)
    assert part.parent.parent == tmp_path / "predictions" / "m" / "staging"
    rows = pq.read_table(part).to_pylist()
    first = rows[0]
    assert first["_version"] == "m:v1" and first["feature.length"] == 1.0 and first["feature.colour"] == "red"
    assert first["feature.colour.length"] == 3.0
    assert (first["feature.pixels.len"], first["feature.pixels.mean"]) == (4.0, 1.5)
    assert first["feature.pixels.std"] == pytest.approx(np.std([0.0, 1.0, 2.0, 3.0]))
    assert [r["prediction.label"] for r in rows] == ["setosa", "versicolor"]
    assert [r["prediction.confidence"] for r in rows] == [0.9, 0.7]
    assert not any(name.startswith("feature.email") for name in first)
    assert first["feature.card"] not in ("4111", None) and "feature.card.length" not in first
    assert first["feature.card"] == predlog._hashed("4111", "pepper")
    # the join key leaves sensitive fields out: ground truth can be keyed without them
    assert first["_row_key"] == predlog.row_key(row(1).model_dump(), {"email": "drop", "card": "hash"})
    assert drops == []


def test_regression_output_and_class_ids() -> None:
    assert predlog.prediction_values(np.array([1.5, 2.5]), (), 2) == [
        {"prediction.value": 1.5},
        {"prediction.value": 2.5},
    ]
    assert predlog.prediction_values(np.array([[1.5]]), (), 1) == [{"prediction.value": 1.5}]
    assert predlog.prediction_values(np.array([1, 0]), CLASSES, 2) == [
        {"prediction.label": "versicolor"},
        {"prediction.label": "setosa"},
    ]
    assert predlog.prediction_values(np.zeros((3, 2)), CLASSES, 2) == [{}, {}]  # not one per row: not logged


def test_the_sample_rate_keeps_that_share_of_requests(tmp_path: Path) -> None:
    log, _ = new_log(tmp_path, sample_rate=0.25)
    log._random = random.Random(7).random
    for i in range(2000):
        log.record([row(i)], np.array([[0.5, 0.5]]))
    assert 400 <= log.stats.recorded <= 600
    off, _ = new_log(tmp_path, sample_rate=0.0)
    off.record([row()], np.array([[0.5, 0.5]]))
    assert off.stats.recorded == 0


def test_a_full_buffer_drops_rows_and_counts_them(tmp_path: Path) -> None:
    log, drops = new_log(tmp_path, buffer_rows=100)
    for i in range(75):
        log.record([row(i), row(i)], np.array([[0.5, 0.5], [0.5, 0.5]]))
    assert log.stats.recorded == 100
    assert log.stats.dropped == {"buffer_full": 50}
    assert sum(n for _, n in drops) == 50
    log.flush()
    [part] = parts(tmp_path)
    assert pq.read_table(part).schema.metadata[predlog.DROPPED_META] == b"50"  # reported with the next part


def test_a_store_that_is_down_costs_rows_not_requests(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    log, drops = new_log(blocker / "store")
    log.record([row()], np.array([[0.5, 0.5]]))
    assert log.flush() == 0
    assert drops == [("store", 1)]
    log.destination = predlog.Destination(str(tmp_path / "store"))  # the store is back
    log.record([row()], np.array([[0.5, 0.5]]))
    assert log.flush() == 1
    [part] = parts(tmp_path / "store")
    assert pq.read_table(part).schema.metadata[predlog.DROPPED_META] == b"1"


class SlowDestination(predlog.Destination):
    """A store that takes a second per write (a real wait, as a slow network would)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writing = threading.Event()

    def put(self, key: str, data: bytes) -> None:
        self.writing.set()
        time.sleep(1.0)
        super().put(key, data)


def test_a_slow_store_never_blocks_recording(tmp_path: Path) -> None:
    destination = SlowDestination(str(tmp_path))
    log = predlog.PredictionLog(
        destination, model="m", env="dev", version="m:v1", classes=CLASSES, flush_s=0.05, on_drop=lambda r, n: None
    )
    try:
        log.record([row()], np.array([[0.5, 0.5]]))
        assert destination.writing.wait(5)
        slowest = 0.0
        for i in range(2000):
            started = time.perf_counter()
            log.record([row(i)], np.array([[0.5, 0.5]]))
            slowest = max(slowest, time.perf_counter() - started)
        # far below the store's 1 s per write: recording never waits for it (a loaded machine may add a few ms)
        assert slowest < 0.5, f"record took {slowest * 1000:.1f} ms while the store was writing"
    finally:
        log.close()
    assert log.stats.written == 2001


class HeldDestination(predlog.Destination):
    """A store whose writes wait until the test lets them through (a store that hangs)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.writing = threading.Event()
        self.release = threading.Event()

    def put(self, key: str, data: bytes) -> None:
        self.writing.set()
        self.release.wait(10)
        super().put(key, data)


def test_rows_waiting_on_a_hung_store_count_against_the_buffer(tmp_path: Path) -> None:
    """buffer_rows bounds every row the log holds: the ones a hung write still holds too, not only the queue."""
    destination = HeldDestination(str(tmp_path))
    log = predlog.PredictionLog(
        destination,
        model="m",
        env="dev",
        version="m:v1",
        classes=CLASSES,
        buffer_rows=1000,
        flush_s=0.05,
        on_drop=lambda r, n: None,
        start=False,
    )
    for i in range(900):
        log.record([row(i)], np.array([[0.5, 0.5]]))
    log.start()
    try:
        assert destination.writing.wait(10)  # the 900 rows are in a write that hangs
        for i in range(3000):
            log.record([row(i)], np.array([[0.5, 0.5]]))
        assert log.stats.recorded == 1000 and log.stats.dropped == {"buffer_full": 2900}
    finally:
        destination.release.set()
        log.close()
    assert log.stats.written == 1000
    assert sum(pq.read_table(p).num_rows for p in parts(tmp_path)) == 1000


def test_the_log_is_configured_from_config_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = parse_config(
        "name: m\ndescription: d\nowner: o\nframework: sklearn\n"
        "monitor: {sample_rate: 0.5, sensitive: {email: drop}, buffer_rows: 1000}\n"
    )
    monkeypatch.delenv(predlog.ENV_URL, raising=False)
    assert predlog.from_env(config, "m:v1") is None
    monkeypatch.setenv(predlog.ENV_URL, str(tmp_path))
    monkeypatch.setenv(predlog.ENV_NAME, "production")
    log = predlog.from_env(config, "m:v1", CLASSES)
    assert log is not None
    try:
        assert (log.env, log.sample_rate, log.sensitive, log.capacity) == ("production", 0.5, {"email": "drop"}, 1000)
        assert log.destination.local == tmp_path
    finally:
        log.close()


def test_without_a_salt_hashed_fields_are_dropped_and_nested_names_are_covered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unsalted hash of an email is reversible with a dictionary: without MODELKIT_PREDLOG_SALT the field is
    dropped instead. A sensitive name also covers the same name inside a nested object (the review of issue 22)."""
    config = parse_config(
        "name: m\ndescription: d\nowner: o\nframework: sklearn\nmonitor: {sensitive: {email: hash, ssn: drop}}\n"
    )
    monkeypatch.setenv(predlog.ENV_URL, str(tmp_path))
    monkeypatch.delenv(predlog.ENV_SALT, raising=False)
    log = predlog.from_env(config, "m:v1")
    assert log is not None
    try:
        assert log.sensitive == {"email": "drop", "ssn": "drop"}
    finally:
        log.close()
    monkeypatch.setenv(predlog.ENV_SALT, "s3cret-salt")  # pragma: allowlist secret
    salted = predlog.from_env(config, "m:v1")
    assert salted is not None
    salted.close()
    assert salted.sensitive == {"email": "hash", "ssn": "drop"}
    values = predlog.row_values(
        {"email": "a@b.c", "profile": {"email": "bob@example.com", "ssn": "987-65-4321", "age": 3}},
        salted.sensitive,
        "s3cret-salt",
    )
    assert "bob@example.com" not in str(values) and "987-65-4321" not in str(values)
    assert values["feature.profile.age"] == 3.0 and len(values["feature.profile.email"]) == 16


@pytest.mark.parametrize("env", ["../../../tmp/escape", "qa", "production/x"])
def test_an_environment_name_that_is_not_one_turns_the_log_off(
    env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config("name: m\ndescription: d\nowner: o\nframework: sklearn\n")
    monkeypatch.setenv(predlog.ENV_URL, str(tmp_path))
    monkeypatch.setenv(predlog.ENV_NAME, env)
    assert predlog.from_env(config, "m:v1") is None


def test_a_candidate_logs_nothing_until_its_activation_file_exists(tmp_path: Path) -> None:
    """A server started as a candidate (fuzzed, load-tested) logs no rows until modelctl makes it the live
    deployment by creating the file (MODELKIT_PREDLOG_ACTIVE_FILE)."""
    flag = tmp_path / "predlog.active"
    log, _ = new_log(tmp_path / "store", active_file=str(flag))
    log.record([row(1)], np.array([[0.9, 0.1]]))
    assert log.flush() == 0 and log.stats.recorded == 0, "fuzz and load-test traffic is not logged"
    flag.touch()
    time.sleep(1.1)  # the file is looked at once a second, not per request
    log.record([row(2)], np.array([[0.3, 0.7]]))
    assert log.flush() == 1


def png_base64(shade: int, size: tuple[int, int] = (8, 6)) -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", size, color=shade).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


class Picture(BaseModel):
    image: Annotated[str, Field(json_schema_extra={"contentEncoding": "base64"})]
    caption: str


def test_text_and_images_get_derived_columns_and_images_are_not_kept(tmp_path: Path) -> None:
    log, _ = new_log(tmp_path)
    log.record([Picture(image=png_base64(255), caption="two words")], np.array([[0.5, 0.5]]))
    log.flush()
    [first] = pq.read_table(parts(tmp_path)[0]).to_pylist()
    assert "feature.image" not in first
    assert (first["feature.image.width"], first["feature.image.height"]) == (8.0, 6.0)
    assert (first["feature.image.mean"], first["feature.image.std"]) == (1.0, 0.0)
    assert first["feature.image.bytes"] > 0
    assert (first["feature.caption"], first["feature.caption.length"], first["feature.caption.words"]) == (
        "two words",
        9.0,
        2.0,
    )
    # the reference of such a model is made from the same rows, so the columns match
    reference = reference_table([Picture(image=png_base64(0), caption="x")], np.array([[0.5, 0.5]]), classes=CLASSES)
    assert reference.column("feature.image.mean").to_pylist() == [0.0]


def test_rows_logged_with_other_fields_keep_the_request_row_s_key(tmp_path: Path) -> None:
    """An entity model logs each id with the features it read; ground truth (and the watch's sample) names the id."""
    log, _ = new_log(tmp_path)
    logged = [{"customer_id": 7, "spend": 12.5}, {"customer_id": 8, "spend": 3.0}]
    log.record(logged, np.array([[0.5, 0.5], [0.2, 0.8]]), keys=[{"customer_id": 7}, {"customer_id": 8}])
    log.flush()
    [part] = parts(tmp_path)
    table = pq.read_table(part)
    assert table.column(predlog.ROW_KEY).to_pylist() == [
        predlog.row_key({"customer_id": 7}, {}),
        predlog.row_key({"customer_id": 8}, {}),
    ]
    assert table.column("feature.spend").to_pylist() == [12.5, 3.0]  # what drift is measured on
