"""What every state store does: versioned reads, compare-and-swap writes, JSON updates, artifacts.

A *version* is an opaque token read together with the bytes (an ETag on S3, a sha256 of the content
locally). ``write_if(key, data, version)`` writes only if the key still has that version
(``None``: only if the key is absent); ``update_json`` retries read-modify-write until its write
wins, so two runners racing on one key both land. Every JSON update keeps the replaced content
under ``<key>.prev``, which is what ``restore`` puts back.
"""

from __future__ import annotations

import copy
import json
import random
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from modelctl.errors import ModelctlError

T = TypeVar("T")

PREVIOUS = ".prev"
# One path segment of a key: no "..", no hidden names (the store's own lock and temp files), no separators.
_SEGMENT = re.compile(r"^[A-Za-z0-9_@+=-][A-Za-z0-9_.@+=-]*$")


class StoreError(ModelctlError):
    """The state store could not be read or written; the message names the store, the key and what to do."""


class VersionConflictError(StoreError):
    """Another writer changed the key since it was read (compare-and-swap lost)."""


class CorruptStateError(StoreError):
    """A key holds something that is not what modelctl wrote there."""

    def __init__(self, where: str, problem: str, fix: str) -> None:
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"{where} {problem}; {fix}")


class ArtifactMismatchError(StoreError):
    """An artifact's bytes are not the ones expected (or another file already has its key)."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    version: str


@dataclass(frozen=True)
class Artifact:
    key: str
    sha256: str
    size: int


def check_key(key: str) -> str:
    """``key`` if it is a plain relative key (``ledger/m.json``): never a path out of the store."""
    segments = key.split("/")
    if not key or not all(_SEGMENT.match(s) for s in segments):
        raise StoreError(
            f"{key!r} is not a valid state-store key: use '/'-separated names of letters, digits and '_.@+=-' "
            "(no '..', no empty or hidden segments)"
        )
    return key


def check_name(name: str, what: str) -> str:
    """``name`` if it can be one segment of a key (a model name, a bento tag's name or version)."""
    if "/" in name or not _SEGMENT.match(name):
        raise StoreError(f"{what} {name!r} is not a plain name (letters, digits and '_.-'; no '/' or '..')")
    return name


def dumps(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8")


def parse_json(data: bytes) -> tuple[Any, str | None]:
    """(document, None), or (None, what is wrong with ``data``) in words."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})"
    try:
        return json.loads(text), None
    except json.JSONDecodeError as exc:
        return None, f"is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
    except RecursionError:
        return None, "is not valid JSON (nested too deeply)"


def _backoff(attempt: int) -> float:
    # Full jitter: racing writers spread out instead of colliding again on the same beat.
    return random.uniform(0, min(1.0, 0.01 * 2**attempt))


class Store(ABC):
    """A key-value store of bytes with versions; keys are '/'-separated (see ``check_key``)."""

    #: How long ``update_json`` keeps retrying a write that other writers keep winning.
    update_timeout: float = 120.0
    #: Whether other machines see this store (False: a runner-local folder; CI then has no champion).
    shared: bool = False

    def __init__(self, url: str, origin: str) -> None:
        self.url = url
        self.origin = origin

    def where(self, key: str) -> str:
        """``key`` as a person finds it: a file path or an object URL."""
        return f"{self.url.rstrip('/')}/{key}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- what a backend implements -------------------------------------------------------------

    @abstractmethod
    def read(self, key: str) -> Blob | None:
        """The bytes and version of ``key``, or None when it does not exist."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> str:
        """Replace ``key`` unconditionally (atomically: readers see the old or the new bytes); the new version."""

    @abstractmethod
    def _swap(self, key: str, data: bytes, version: str | None) -> str:
        """Write ``data`` if ``key`` has ``version`` (None: is absent), else VersionConflictError; the new version."""

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Keys that start with ``prefix``, sorted (not the ``.prev`` copies or the store's own files)."""

    @abstractmethod
    def put_file(self, key: str, path: Path) -> Artifact:
        """Store the file at ``path`` under ``key`` once; the same bytes again is a no-op, other bytes an error."""

    @abstractmethod
    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Artifact:
        """Download ``key`` to ``dest`` after checking its sha256 (against ``sha256`` too, when given)."""

    @abstractmethod
    def stat_file(self, key: str) -> Artifact | None:
        """The sha256 and size of the artifact at ``key``, or None when there is none."""

    def copy_hint(self, source: str, target: str) -> str:
        """A command that copies ``source`` over ``target`` in this store."""
        return f"copy {self.where(source)} over {self.where(target)}"

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[None]:
        """Held across one read-modify-write of ``key`` (a file lock locally; nothing on S3, where CAS decides)."""
        yield

    # --- what every store does -----------------------------------------------------------------

    def write_if(self, key: str, data: bytes, version: str | None) -> str:
        """Compare-and-swap: write ``data`` only if ``key`` still has ``version`` (None: create only if absent)."""
        check_key(key)
        with self._exclusive(key):
            return self._swap(key, data, version)

    def read_json(self, key: str, fix: str | None = None) -> tuple[Any, str] | None:
        """(document, version) of ``key``, None when absent; CorruptStateError (with ``fix``) when unparseable."""
        blob = self.read(check_key(key))
        if blob is None:
            return None
        document, problem = parse_json(blob.data)
        if problem:
            raise CorruptStateError(self.where(key), problem, fix or self.restore_hint(key))
        return document, blob.version

    def write_json(self, key: str, document: object, keep_previous: bool = True) -> None:
        """Replace ``key`` with ``document`` (keeping the replaced version under ``<key>.prev``)."""
        self.update_json(key, lambda _current: document, keep_previous=keep_previous)

    def update_json(
        self,
        key: str,
        fn: Callable[[Any], T],
        *,
        keep_previous: bool = True,
        fix: str | None = None,
    ) -> T:
        """Apply ``fn`` to the document at ``key`` (None when absent) and write what it returns, atomically.

        Compare-and-swap in a loop: when another writer got in between, read again and re-apply ``fn``
        (so ``fn`` must be a pure function of the document). A result equal to the current document
        writes nothing, which makes an idempotent ``fn`` safe to retry after a lost response.
        A document that does not parse is never overwritten: CorruptStateError naming ``fix``.
        """
        check_key(key)
        deadline = time.monotonic() + self.update_timeout
        attempt = 0
        with self._exclusive(key):
            while True:
                blob = self.read(key)
                current: Any = None
                if blob is not None:
                    current, problem = parse_json(blob.data)
                    if problem:
                        raise CorruptStateError(self.where(key), problem, fix or self.restore_hint(key))
                result = fn(copy.deepcopy(current))
                if blob is not None and result == current:
                    return result
                if keep_previous and blob is not None:
                    # Before the swap: if this writer dies in between, .prev equals the current content.
                    self.write(key + PREVIOUS, blob.data)
                try:
                    self._swap(key, dumps(result), blob.version if blob else None)
                    return result
                except VersionConflictError:
                    attempt += 1
                    if time.monotonic() > deadline:
                        raise VersionConflictError(
                            f"{self.where(key)} kept changing under {attempt} attempts in {self.update_timeout:.0f}s "
                            "(other modelctl runs write it too); run the command again"
                        ) from None
                    time.sleep(_backoff(attempt))

    def restore_hint(self, key: str) -> str:
        return f"restore the previous version: {self.copy_hint(key + PREVIOUS, key)}"

    def restore(self, key: str, check: Callable[[Any], str | None] | None = None) -> Any:
        """Put ``<key>.prev`` back as ``key`` (after ``check(document)`` found nothing wrong with it); the document.

        The damaged content is kept as ``<key>.prev`` in exchange, so a restore can itself be undone.
        """
        check_key(key)
        previous = self.read(key + PREVIOUS)
        if previous is None:
            raise StoreError(
                f"{self.where(key + PREVIOUS)} does not exist: no earlier version of {self.where(key)} was kept; "
                f"repair {key} by hand or delete it to start a new one (its history is lost)"
            )
        document, problem = parse_json(previous.data)
        problem = problem or (check(document) if check else None)
        if problem:
            raise CorruptStateError(
                self.where(key + PREVIOUS), problem, f"repair it by hand, then run this restore again (or delete {key})"
            )
        with self._exclusive(key):
            current = self.read(key)
            self._swap(key, previous.data, current.version if current else None)
        if current is not None:
            self.write(key + PREVIOUS, current.data)
        return document
