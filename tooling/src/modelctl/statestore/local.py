"""The state store in a local folder (the default: ``<repo>/.modelctl`` or ``$MODELCTL_STATE_DIR``).

Writes go to a temp file that is fsynced and renamed over the key, so a killed writer leaves the old
or the new content, never a torn file. A compare-and-swap holds a file lock (``filelock``: an OS
lock, released when its process dies) on ``.<name>.lock`` beside the key. Versions are the sha256
of the content. Good for one machine (and NFS only as far as its locks go); runners that do not
share a disk need an object store.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from modelctl.statestore.base import (
    PREVIOUS,
    Artifact,
    ArtifactMismatchError,
    Blob,
    Store,
    StoreError,
    VersionConflictError,
    check_key,
)

CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``target``, fsync it and rename it over ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_hashing(source: Path, directory: Path, name: str) -> tuple[Path, str, int]:
    """Copy ``source`` to a fsynced temp file in ``directory``; (temp path, sha256, size)."""
    directory.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            for chunk in iter(lambda: src.read(CHUNK), b""):
                digest.update(chunk)
                size += len(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp), digest.hexdigest(), size


class LocalStore(Store):
    #: How long a writer waits for another one's lock on the same key.
    lock_timeout: float = 60.0

    def __init__(self, root: Path, origin: str = "the local state folder") -> None:
        self.root = root.resolve()
        super().__init__(str(self.root), origin)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def where(self, key: str) -> str:
        return str(self.root / key)

    def copy_hint(self, source: str, target: str) -> str:
        return f"cp {shlex.quote(self.where(source))} {shlex.quote(self.where(target))}"

    @contextmanager
    def _exclusive(self, key: str) -> Iterator[None]:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = path.parent / f".{path.name}.lock"
        # Imported here: every command module is imported at start-up, and the pre-commit hook that runs
        # `modelctl validate` has only a few of modelctl's dependencies (see .pre-commit-config.yaml).
        from filelock import FileLock, Timeout

        try:
            with FileLock(lock_path, timeout=self.lock_timeout):
                yield
        except Timeout:
            raise StoreError(
                f"{path} is locked by another modelctl process since more than {self.lock_timeout:.0f}s "
                f"({lock_path}); wait for it to finish, or stop it"
            ) from None

    def read(self, key: str) -> Blob | None:
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read {path}: {exc.strerror or exc}; check the state folder") from exc
        return Blob(data, hashlib.sha256(data).hexdigest())

    def write(self, key: str, data: bytes) -> str:
        self._atomic_write(self.path(key), data)
        return hashlib.sha256(data).hexdigest()

    def _swap(self, key: str, data: bytes, version: str | None) -> str:
        current = self.read(key)
        if (current.version if current else None) != version:
            raise VersionConflictError(f"{self.where(key)} changed since it was read")
        return self.write(key, data)

    def _atomic_write(self, path: Path, data: bytes) -> None:
        try:
            atomic_write(path, data)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror or exc}; check the state folder") from exc

    def list(self, prefix: str = "") -> list[str]:
        base = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            relative = path.relative_to(self.root).as_posix()
            hidden = any(part.startswith(".") for part in relative.split("/"))
            if path.is_file() and not hidden and relative.startswith(prefix) and not relative.endswith(PREVIOUS):
                keys.append(relative)
        return sorted(keys)

    def put_file(self, key: str, path: Path) -> Artifact:
        target = self.path(key)
        try:
            tmp, digest, size = _copy_hashing(path, target.parent, target.name)
        except FileNotFoundError as exc:
            raise StoreError(f"cannot store {path} as {target}: {exc.strerror}") from exc
        try:
            os.link(tmp, target)  # create only if absent, atomically
        except FileExistsError:
            existing = sha256_file(target)
            if existing != digest:
                raise ArtifactMismatchError(
                    f"{target} already holds other bytes (sha256 {existing}, not {digest} of {path}): "
                    "artifacts are written once; store this one under a new tag"
                ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return Artifact(key, digest, size)

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Artifact:
        source = self.path(key)
        if not source.is_file():
            raise StoreError(f"{source} does not exist: the artifact was never stored (or was removed)")
        tmp, digest, size = _copy_hashing(source, dest.parent, dest.name)
        try:
            if sha256 is not None and digest != sha256:
                raise ArtifactMismatchError(
                    f"{source} has sha256 {digest}, not the expected {sha256}: not the tested file; do not deploy it"
                )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return Artifact(key, digest, size)

    def stat_file(self, key: str) -> Artifact | None:
        path = self.path(key)
        if not path.is_file():
            return None
        return Artifact(key, sha256_file(path), path.stat().st_size)
