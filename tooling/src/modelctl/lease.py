"""A lease in the state store: one holder at a time across runners, with an expiry so a killed holder never
blocks for ever. Acquired, renewed and released with compare-and-swap on the lease object's version.

Deploys of one model to one environment take it (beside the machine-local file lock), so two CI jobs on
different runners can never deploy the same model at once, whatever GitHub's concurrency groups say.

The lease is short and renewed by a background thread while the holder works (issue #20, item 9: a fixed
1,800 s lease expired during a day-long post-deploy watch, a second deploy took it, and the first one's
rollback overwrote the second). Its length does not depend on how long the holder works, only on how long a
renewal may take: see :func:`lease_length`. A renewal that finds the lease taken by someone else is
remembered, and :meth:`Lease.check` (called before every ledger write and before a rollback) renews it once
more by compare-and-swap, so a holder that lost the lease stops before it writes anything.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from modelctl.console import err
from modelctl.errors import ModelctlError
from modelctl.statestore import Store, StoreError, VersionConflictError

# A killed holder blocks the next one for at most this long (unless the store's timeout asks for longer).
MIN_LEASE_S = 180.0
# Renewed every third of its length: one renewal may hang for the store's whole timeout, and the next one
# still lands before the lease expires (see lease_length).
RENEW_FRACTION = 1 / 3
POLL_S = 2.0


class LeaseHeldError(ModelctlError):
    pass


class LeaseLostError(ModelctlError):
    """The lease expired and another holder took it: this holder must not write anything more."""


def _holder() -> str:
    run = os.environ.get("GITHUB_RUN_ID")
    where = f"github run {run}" if run else f"{socket.gethostname()} pid {os.getpid()}"
    return f"{where} ({uuid.uuid4().hex[:8]})"


def lease_length(store: Store) -> float:
    """The length of a renewed lease on ``store``: short, so a killed holder frees it within minutes, yet more
    than three times one call's timeout (``MODELCTL_STORE_TIMEOUT`` for an object store), so a renewal that
    hangs for the whole timeout is followed by another one before the lease runs out.

    It does not cover the holder's work (a deploy's watch may last a day, ``deploy.watch.duration_s``): the
    renewer does; a length covering the longest watch would block every deploy for a day after a killed one."""
    timeout = getattr(store, "timeout", 0.0)
    seconds = float(timeout) if isinstance(timeout, int | float) else 0.0
    return max(MIN_LEASE_S, 4 * seconds)


class Lease:
    """A held lease: renewed in the background until released; ``check`` before acting on what it protects."""

    def __init__(self, store: Store, key: str, what: str, holder: str, version: str, length_s: float) -> None:
        self.store, self.key, self.what, self.holder, self.length_s = store, key, what, holder, length_s
        self._version = version
        self._lost_to: str | None = None
        self._lock = threading.Lock()  # one compare-and-swap at a time: the renewer's or the holder's
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew_until_stopped, name=f"lease {key}", daemon=True)

    @property
    def lost_to(self) -> str | None:
        """Who took the lease, once a renewal or a check found it gone; None while it is this holder's."""
        return self._lost_to

    def check(self, doing: str) -> None:
        """Renew the lease now (compare-and-swap), or raise LeaseLostError naming who holds it: call it right
        before ``doing`` (a ledger write, a rollback), which then has a whole lease length to finish."""
        with self._lock:
            if self._lost_to is None:
                self._renew()
        self.raise_if_lost(doing)

    def raise_if_lost(self, doing: str) -> None:
        """LeaseLostError if a renewal already found the lease taken (no call to the store)."""
        if self._lost_to is not None:
            raise LeaseLostError(
                f"{self.what} lost its lease to {self._lost_to} ({self.store.where(self.key)}): "
                f"stopped before {doing}, nothing written"
            )

    def _body(self, expires_at: float) -> bytes:
        return json.dumps({"holder": self.holder, "what": self.what, "expires_at": expires_at}).encode()

    def _renew(self) -> None:
        """Extend the lease by compare-and-swap; when it is someone else's now, remember whose. Under _lock."""
        for _attempt in range(3):
            try:
                self._version = self.store.write_if(self.key, self._body(time.time() + self.length_s), self._version)
                return
            except VersionConflictError:
                pass
            blob = self.store.read(self.key)
            current = _parse(blob.data) if blob is not None else {}
            if blob is None or current.get("holder") != self.holder:
                self._lost_to = str(current.get("holder") or "someone who removed it")
                return
            # Still ours: an earlier write of ours landed though its answer was lost (a retried conditional PUT).
            self._version = blob.version
        raise VersionConflictError(f"{self.store.where(self.key)} keeps changing under its holder {self.holder}")

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.length_s * RENEW_FRACTION):
            try:
                with self._lock:
                    self._renew()
            except StoreError as exc:  # the lease may still hold: the next renewal (or check) tries again
                err.print(f"could not renew the lease of {self.what}: {exc}; trying again", markup=False)
                continue
            if self._lost_to is not None:
                err.print(f"{self.what} lost its lease to {self._lost_to}", markup=False)
                return

    def _start(self) -> None:
        self._renewer.start()

    def _release(self) -> None:
        self._stop.set()
        self._renewer.join()
        with self._lock:
            if self._lost_to is not None:
                return  # someone else holds it now: theirs to release
            try:
                self.store.write_if(self.key, self._body(0), self._version)
            except VersionConflictError:
                pass  # it expired and someone else holds it now: theirs to release


@contextmanager
def held(store: Store, key: str, what: str, wait_s: float, lease_s: float | None = None) -> Iterator[Lease]:
    """Hold the lease ``key`` for the block, renewed in the background; wait up to ``wait_s`` for another
    holder, then fail naming it. ``lease_s``: its length (default: :func:`lease_length`)."""
    length_s = lease_length(store) if lease_s is None else lease_s
    me = _holder()
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        blob = store.read(key)
        current = _parse(blob.data) if blob is not None else {}
        expires = current.get("expires_at", 0)
        free = not current or not isinstance(expires, int | float) or expires < time.time()
        if free:
            body = json.dumps({"holder": me, "what": what, "expires_at": time.time() + length_s}).encode()
            try:
                version = store.write_if(key, body, blob.version if blob is not None else None)
                break
            except VersionConflictError:
                continue  # another runner took it between our read and write: look again
        if time.monotonic() >= deadline:
            raise LeaseHeldError(
                f"{what} is locked by {current.get('holder', 'another runner')} ({store.where(key)}); try again later"
            )
        if not announced:
            err.print(f"waiting for {current.get('holder', 'another runner')} to finish {what} ...", markup=False)
            announced = True
        time.sleep(POLL_S)
    lease = Lease(store, key, what, me, version, length_s)
    lease._start()
    try:
        yield lease
    finally:
        lease._release()


def _parse(data: bytes) -> dict[str, object]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
