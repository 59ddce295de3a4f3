"""A lease in the state store: one holder at a time across runners, with an expiry so a killed holder never
blocks for ever. Acquired and released with compare-and-swap on the lease object's version.

Deploys of one model to one environment take it (beside the machine-local file lock), so two CI jobs on
different runners can never deploy the same model at once, whatever GitHub's concurrency groups say.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from modelctl.console import err
from modelctl.errors import ModelctlError
from modelctl.statestore import Store, VersionConflictError

DEFAULT_LEASE_S = 1800.0  # longer than any deploy and its watch; a holder that dies frees it after this
POLL_S = 2.0


class LeaseHeldError(ModelctlError):
    pass


def _holder() -> str:
    run = os.environ.get("GITHUB_RUN_ID")
    where = f"github run {run}" if run else f"{socket.gethostname()} pid {os.getpid()}"
    return f"{where} ({uuid.uuid4().hex[:8]})"


@contextmanager
def held(store: Store, key: str, what: str, wait_s: float, lease_s: float = DEFAULT_LEASE_S) -> Iterator[None]:
    """Hold the lease ``key`` for the block; wait up to ``wait_s`` for another holder, then fail naming it."""
    me = _holder()
    deadline = time.monotonic() + wait_s
    announced = False
    while True:
        blob = store.read(key)
        current = _parse(blob.data) if blob is not None else {}
        expires = current.get("expires_at", 0)
        free = not current or not isinstance(expires, int | float) or expires < time.time()
        if free:
            body = json.dumps({"holder": me, "what": what, "expires_at": time.time() + lease_s}).encode()
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
    try:
        yield
    finally:
        released = json.dumps({"holder": me, "what": what, "expires_at": 0}).encode()
        try:
            store.write_if(key, released, version)
        except VersionConflictError:
            pass  # it expired and someone else holds it now: theirs to release


def _parse(data: bytes) -> dict[str, object]:
    try:
        parsed = json.loads(data)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}
