"""A lease in the state store: one holder across runners, taken over only once it has expired."""

from __future__ import annotations

import json
import re
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


KEY, WHAT = "locks/m/staging.json", "a deploy of m to staging"


def test_a_renewing_holder_keeps_a_short_lease_for_longer_than_its_length(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease, "POLL_S", 0.05)
    with lease.held(store, KEY, WHAT, wait_s=1, lease_s=1.5) as holder:
        started = time.monotonic()
        while time.monotonic() - started < 4.5:  # three lengths: without renewal it expires after the first
            with pytest.raises(lease.LeaseHeldError, match=f"{WHAT} is locked by "):
                with lease.held(store, KEY, WHAT, wait_s=0, lease_s=1.5):
                    pass
            time.sleep(0.25)
        holder.check("writing the ledger")
        assert holder.lost_to is None
        blob = store.read(KEY)
        assert blob is not None and json.loads(blob.data)["holder"] == holder.holder
    with lease.held(store, KEY, WHAT, wait_s=0):
        pass  # released (and the renewer stopped): free at once


def test_a_holder_whose_expired_lease_was_taken_is_refused_before_it_writes(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lease, "RENEW_FRACTION", 1000.0)  # a stalled holder: no renewal during the test
    with lease.held(store, KEY, WHAT, wait_s=1, lease_s=0.5) as first:
        time.sleep(0.6)  # expired
        with lease.held(store, KEY, WHAT, wait_s=1, lease_s=60) as second:
            taken = store.read(KEY)
            with pytest.raises(
                lease.LeaseLostError,
                match=rf"^{WHAT} lost its lease to {re.escape(second.holder)} \(.*locks/m/staging\.json\): "
                "stopped before writing the ledger, nothing written$",
            ):
                first.check("writing the ledger")
            assert first.lost_to == second.holder
            assert store.read(KEY) == taken, "the refused holder wrote nothing, not even to the lease"
            second.check("writing the ledger")  # the new holder goes on
            with pytest.raises(lease.LeaseLostError):
                first.check("rolling back")  # and the old one stays refused
    blob = store.read(KEY)
    assert blob is not None and json.loads(blob.data)["holder"] == second.holder, "released by the second holder"


def test_a_renewal_that_finds_the_lease_taken_tells_the_holder_and_overwrites_nothing(store: Store) -> None:
    taker = {"holder": "github run 99 (0123abcd)", "what": WHAT, "expires_at": time.time() + 60}
    with lease.held(store, KEY, WHAT, wait_s=1, lease_s=0.6) as holder:
        store.write(KEY, json.dumps(taker).encode())  # taken over by force while the holder works
        deadline = time.monotonic() + 5
        while holder.lost_to is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.lost_to == "github run 99 (0123abcd)", "the renewer found out without being asked"
        with pytest.raises(lease.LeaseLostError, match="lost its lease to github run 99 .*stopped before rolling back"):
            holder.raise_if_lost("rolling back")
    blob = store.read(KEY)
    assert blob is not None and json.loads(blob.data) == taker, "neither a renewal nor the release overwrote it"


def test_the_lease_length_follows_the_store_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str
) -> None:
    url = use_s3(monkeypatch, s3_endpoint)
    for timeout, length in ((None, lease.MIN_LEASE_S), (120.0, 480.0)):  # MODELCTL_STORE_TIMEOUT=120: 4 x 120 s
        store = open_store(url, timeout=timeout, base=tmp_path)
        with lease.held(store, KEY, WHAT, wait_s=0):
            blob = store.read(KEY)
            assert blob is not None
            assert length - 5 < json.loads(blob.data)["expires_at"] - time.time() <= length
