"""A lease in the state store: one holder across runners, taken over only once it has expired."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from modelctl import lease
from modelctl.statestore import LocalStore, Store, open_store
from tests.s3_stand_in import use_s3


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "state")
    return open_store(use_s3(monkeypatch, request.getfixturevalue("s3_endpoint")), base=tmp_path)


def test_a_second_holder_waits_then_fails_naming_the_first(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "POLL_S", 0.05)
    with lease.held(store, "locks/m/staging.json", "a deploy of m to staging", wait_s=5):
        with pytest.raises(lease.LeaseHeldError, match="a deploy of m to staging is locked by .*try again later"):
            with lease.held(store, "locks/m/staging.json", "a deploy of m to staging", wait_s=0.2):
                pass
    with lease.held(store, "locks/m/staging.json", "a deploy of m to staging", wait_s=0.2):
        pass  # released: free again


def test_an_expired_lease_of_a_dead_holder_is_taken_over(store: Store) -> None:
    dead = {"holder": "a runner that was killed", "what": "x", "expires_at": time.time() - 1}
    store.write("locks/m/production.json", json.dumps(dead).encode())
    with lease.held(store, "locks/m/production.json", "a deploy", wait_s=0.2):
        blob = store.read("locks/m/production.json")
        assert blob is not None and json.loads(blob.data)["holder"] != "a runner that was killed"


def test_two_racing_holders_never_overlap(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lease, "POLL_S", 0.01)
    inside, overlaps = [], []

    def deploy() -> None:
        for _ in range(5):
            with lease.held(store, "locks/m/staging.json", "a deploy", wait_s=30):
                inside.append(1)
                if len(inside) > 1:
                    overlaps.append(1)
                time.sleep(0.01)
                inside.pop()

    threads = [threading.Thread(target=deploy) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
