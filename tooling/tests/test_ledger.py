"""The release ledger: atomic, locked, never torn or lost."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from modelctl.ledger import Ledger, LedgerError, Record


def deployed(bento: str, env: str = "staging") -> Record:
    return Record(model="m", env=env, target="local", outcome="deployed", bento=bento)


def test_versions_count_successful_deploys(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    assert ledger.append(deployed("m:a")).version == 1
    assert ledger.append(Record(model="m", env="staging", target="local", outcome="failed", bento="m:x")).version == 0
    assert ledger.append(deployed("m:b")).version == 2
    assert ledger.live("m", "staging").bento == "m:b"
    assert ledger.previous_good("m", "staging", ledger.live("m", "staging")).bento == "m:a"
    assert ledger.find_version("m", "staging", 1).bento == "m:a"
    assert ledger.live("m", "production") is None


def test_undeploy_and_rollback_change_what_is_live(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.append(deployed("m:a"))
    ledger.append(deployed("m:b"))
    ledger.append(Record(model="m", env="staging", target="local", outcome="rolled_back", bento="m:a", version=1))
    assert ledger.live("m", "staging").bento == "m:a"
    ledger.append(Record(model="m", env="staging", target="local", outcome="undeployed"))
    assert ledger.live("m", "staging") is None


def test_records_carry_time_and_trigger(tmp_path: Path) -> None:
    record = Ledger(tmp_path).append(deployed("m:a"))
    assert record.at.endswith("+00:00") and "@" in record.triggered_by


def _hammer(directory: str, worker: int, count: int) -> None:
    ledger = Ledger(Path(directory))
    for index in range(count):
        ledger.append(deployed(f"m:{worker}-{index}"))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    workers = [multiprocessing.Process(target=_hammer, args=(str(tmp_path), w, 25)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    records = Ledger(tmp_path).records("m")
    assert len(records) == 100
    assert sorted(r.version for r in records) == list(range(1, 101))


def test_a_killed_writer_leaves_the_ledger_readable(tmp_path: Path) -> None:
    for attempt in range(5):
        worker = multiprocessing.Process(target=_hammer, args=(str(tmp_path), attempt, 10_000))
        worker.start()
        time.sleep(0.2 + attempt * 0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.join()
        records = Ledger(tmp_path).records("m")  # parses: never a torn file
        assert records and all(r.bento for r in records)
    leftovers = [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"]
    assert len(leftovers) <= 5, leftovers


def test_a_corrupted_ledger_is_reported_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "m.json").write_text("{not json")
    with pytest.raises(LedgerError, match="m.json is unreadable"):
        Ledger(tmp_path).append(deployed("m:a"))
    assert (tmp_path / "m.json").read_text() == "{not json"


def test_file_is_plain_json(tmp_path: Path) -> None:
    Ledger(tmp_path).append(deployed("m:a"))
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["model"] == "m" and data["records"][0]["bento"] == "m:a"
