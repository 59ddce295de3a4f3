"""The state store in an S3-compatible bucket (AWS S3, MinIO, GCS's S3 interop), through s3fs.

Compare-and-swap is S3's own conditional write: ``PutObject`` with ``If-Match: <ETag read>`` (or
``If-None-Match: *`` to create), which the server refuses with 412 when another writer got there
first (409 ConditionalRequestConflict when two such writes overlap; both are a lost race, read
again). A PUT is atomic, so a killed writer leaves the old or the new object. A server that
ignores either header would silently lose updates (``If-Match``) or let two runners both create the
first lease, ledger record or write-once artifact (``If-None-Match``): the first conditional write of a
process checks that the server honours both, on one probe object it then deletes, and refuses to go on
otherwise.

Credentials and region come from the usual AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``,
``AWS_REGION``...); the endpoint from ``MODELCTL_STORE_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3`` /
``AWS_ENDPOINT_URL``). Every call has a bounded time: no hang on an endpoint that does not answer.
"""

from __future__ import annotations

import os
import shlex
import tempfile
import threading
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import fsspec.asyn
from fsspec.exceptions import FSTimeoutError

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
from modelctl.statestore.local import sha256_file

T = TypeVar("T")

CONFLICT_CODES = {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}
DENIED_CODES = {
    "AccessDenied",
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AllAccessDisabled",
}
UNREACHABLE = {
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ConnectionClosedError",
    "ProxyConnectionError",
    "SSLError",
    "ClientConnectorError",
    "ServerDisconnectedError",
}
SHA256_META = "sha256"
# An ETag no object has (S3's are an MD5 or an MD5-N of parts): If-Match with it must always fail.
NEVER_ETAG = '"00000000000000000000000000000000"'

_filesystems: dict[tuple[Any, ...], Any] = {}
_checked: set[tuple[str, str]] = set()
_lock = threading.Lock()


def endpoint_from_env() -> str | None:
    names = ("MODELCTL_STORE_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    return next((os.environ[n].strip() for n in names if os.environ.get(n, "").strip()), None)


def _filesystem(endpoint_url: str | None, timeout: float) -> Any:
    """One s3fs filesystem per endpoint, timeout, credentials and process (s3fs's own cache ignores the env)."""
    import s3fs  # imported here: it costs ~1 s and only S3 stores need it

    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_")))
    cache_key = (endpoint_url, timeout, env, os.getpid())
    with _lock:
        fs = _filesystems.get(cache_key)
        if fs is None:
            config: dict[str, Any] = {
                "connect_timeout": min(timeout, 5.0),
                "read_timeout": timeout,
                "retries": {"max_attempts": 3, "mode": "standard"},
            }
            if endpoint_url:
                # MinIO and most S3-compatible servers want path-style URLs (bucket in the path).
                config["s3"] = {"addressing_style": "path"}
            fs = s3fs.S3FileSystem(endpoint_url=endpoint_url, config_kwargs=config, skip_instance_cache=True)
            fs.retries = 2  # s3fs's own retry loop (default 5), on top of botocore's 3 attempts
            _filesystems[cache_key] = fs
    return fs


def _error_code(exc: BaseException) -> str | None:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            break
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = (response.get("Error") or {}).get("Code")
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
            return str(code or status or "") or None
        seen = seen.__cause__ or seen.__context__
    return None


def _exception_names(exc: BaseException) -> set[str]:
    names: set[str] = set()
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain, not a cycle
        if seen is None:
            break
        names.update(cls.__name__ for cls in type(seen).__mro__)
        seen = seen.__cause__ or seen.__context__
    return names


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class S3Store(Store):
    """Keys are objects under ``s3://bucket/prefix/``."""

    shared = True

    #: Seconds for one JSON read or write (connect, send, answer, retries included).
    timeout: float = 30.0
    #: Seconds for one artifact upload or download.
    transfer_timeout: float = 1800.0

    def __init__(
        self, url: str, origin: str = "MODELCTL_STORE", endpoint_url: str | None = None, timeout: float | None = None
    ) -> None:
        rest = url.split("://", 1)[1] if "://" in url else url
        bucket, _, prefix = rest.partition("/")
        prefix = prefix.strip("/")
        if not bucket or (prefix and check_prefix(prefix) is None):
            raise StoreError(f"{url!r} ({origin}) is not an S3 URL like s3://bucket or s3://bucket/prefix")
        self.bucket, self.prefix = bucket, prefix
        self.endpoint_url = endpoint_url or endpoint_from_env()
        if timeout is not None:
            self.timeout = timeout
        super().__init__(f"s3://{bucket}" + (f"/{prefix}" if prefix else ""), origin)
        self.fs = _filesystem(self.endpoint_url, self.timeout)

    # --- plumbing --------------------------------------------------------------------------------

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def endpoint(self) -> str:
        return self.endpoint_url or "AWS S3"

    def copy_hint(self, source: str, target: str) -> str:
        endpoint = f" --endpoint-url {shlex.quote(self.endpoint_url)}" if self.endpoint_url else ""
        return f"aws s3 cp {shlex.quote(self.where(source))} {shlex.quote(self.where(target))}{endpoint}"

    def _run(self, what: str, key: str, coroutine: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run one S3 call on s3fs's event loop within ``timeout``; S3's errors become one-line StoreErrors."""
        seconds = timeout or self.timeout
        try:
            result: T = fsspec.asyn.sync(self.fs.loop, coroutine, timeout=seconds)
        except FSTimeoutError:
            raise StoreError(
                f"{what} {self.where(key)}: no answer from {self.endpoint} within {seconds:.0f}s; "
                "check the endpoint (MODELCTL_STORE_ENDPOINT_URL) and the network"
            ) from None
        except StoreError:
            raise
        except Exception as exc:
            if isinstance(exc, OSError) or _exception_names(exc) & {"BotoCoreError", "ClientError"}:
                raise self._explain(exc, what, key) from exc
            raise  # anything else is a bug: keep its traceback
        return result

    def _explain(self, exc: BaseException, what: str, key: str) -> StoreError:
        code = _error_code(exc)
        names = _exception_names(exc)
        where = self.where(key)
        if code in CONFLICT_CODES:
            return VersionConflictError(f"{where} changed since it was read ({code})")
        if code == "NoSuchBucket":
            return StoreError(
                f"bucket {self.bucket!r} does not exist at {self.endpoint}: create it "
                f"(aws s3 mb s3://{self.bucket}) or fix the store URL ({self.origin})"
            )
        if code in DENIED_CODES:
            return StoreError(
                f"{what} {where} was refused ({code}): check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) "
                "and that they may read and write the bucket"
            )
        if names & {"NoCredentialsError", "PartialCredentialsError"}:
            return StoreError(
                f"no AWS credentials to {what} {where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE, or run with a role)"
            )
        if names & UNREACHABLE:
            return StoreError(
                f"cannot reach {self.endpoint} to {what} {where}: check MODELCTL_STORE_ENDPOINT_URL "
                f"(or AWS_ENDPOINT_URL) and the network ({_one_line(str(exc), 120)})"
            )
        detail = f"{code}: " if code else ""
        return StoreError(f"{what} {where} failed: {detail}{_one_line(str(exc))}")

    async def _get_object(self, key: str) -> tuple[bytes, str] | None:
        try:
            response = await self.fs._call_s3("get_object", Bucket=self.bucket, Key=self.object_key(key))
        except FileNotFoundError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", None):
                return None
            raise
        body = response["Body"]
        try:
            data = await body.read()
        finally:
            body.close()
        return bytes(data), str(response["ETag"])

    async def _head(self, key: str) -> dict[str, Any] | None:
        try:
            response: dict[str, Any] = await self.fs._call_s3(
                "head_object", Bucket=self.bucket, Key=self.object_key(key)
            )
        except FileNotFoundError as exc:
            if _error_code(exc) in ("NoSuchKey", "404", None):
                return None
            raise
        return response

    async def _put(self, key: str, data: bytes, **condition: str) -> str:
        response = await self.fs._call_s3(
            "put_object", Bucket=self.bucket, Key=key, Body=data, ContentType="application/json", **condition
        )
        return str(response.get("ETag", ""))

    def _check_conditional_writes(self) -> None:
        """Refuse a server that ignores If-Match or If-None-Match: racing runners would overwrite each other."""
        marker = (self.endpoint, self.bucket)
        if marker in _checked:
            return
        probe = self.object_key(f".modelctl-probe-{uuid.uuid4().hex}")  # one per check: concurrent checks never meet

        async def applied(**condition: str) -> bool:
            """Whether a PUT of the (existing) probe with ``condition``, which must not hold, was applied anyway."""
            try:
                await self._put(probe, b"", **condition)
            except OSError as exc:
                if _error_code(exc) in CONFLICT_CODES:
                    return False
                raise
            return True

        async def ignored_headers() -> list[str]:
            await self._put(probe, b"", IfNoneMatch="*")  # a new key: created by any server
            try:
                checks = (("If-Match", {"IfMatch": NEVER_ETAG}), ("If-None-Match", {"IfNoneMatch": "*"}))
                return [header for header, condition in checks if await applied(**condition)]
            finally:
                await self.fs._call_s3("delete_object", Bucket=self.bucket, Key=probe)

        ignored = self._run("check conditional writes at", probe, ignored_headers)
        if ignored:
            raise StoreError(
                f"{self.endpoint} ignores S3 conditional writes ({' and '.join(ignored)}) on bucket {self.bucket!r}: "
                "runners writing the same state at once would overwrite each other; use a server that honours both "
                "If-Match and If-None-Match on PutObject (AWS S3, MinIO)"
            )
        _checked.add(marker)

    # --- Store -----------------------------------------------------------------------------------

    def read(self, key: str) -> Blob | None:
        check_key(key)
        found = self._run("read", key, lambda: self._get_object(key))
        return None if found is None else Blob(*found)

    def write(self, key: str, data: bytes) -> str:
        check_key(key)
        return self._run("write", key, lambda: self._put(self.object_key(key), data))

    def _swap(self, key: str, data: bytes, version: str | None) -> str:
        self._check_conditional_writes()
        condition = {"IfMatch": version} if version is not None else {"IfNoneMatch": "*"}
        try:
            return self._run("write", key, lambda: self._put(self.object_key(key), data, **condition))
        except StoreError as exc:
            # If-Match on an object deleted meanwhile answers 404: also a lost race.
            if version is not None and _error_code(exc.__cause__ or exc) in ("NoSuchKey", "404"):
                raise VersionConflictError(f"{self.where(key)} was deleted since it was read") from exc
            raise

    def list(self, prefix: str = "") -> list[str]:
        full = self.object_key(prefix) if prefix else (f"{self.prefix}/" if self.prefix else "")
        strip = len(f"{self.prefix}/") if self.prefix else 0

        async def list_all() -> list[str]:
            keys: list[str] = []
            token: dict[str, str] = {}
            while True:
                page = await self.fs._call_s3("list_objects_v2", Bucket=self.bucket, Prefix=full, **token)
                keys += [item["Key"][strip:] for item in page.get("Contents", [])]
                if not page.get("IsTruncated"):
                    return keys
                token = {"ContinuationToken": page["NextContinuationToken"]}

        keys = self._run("list", prefix or "", list_all)
        return sorted(
            k for k in keys if not k.endswith(PREVIOUS) and not any(part.startswith(".") for part in k.split("/"))
        )

    def stat_file(self, key: str) -> Artifact | None:
        check_key(key)
        head = self._run("read", key, lambda: self._head(key))
        if head is None:
            return None
        digest = (head.get("Metadata") or {}).get(SHA256_META)
        if not digest:
            raise ArtifactMismatchError(
                f"{self.where(key)} has no sha256 in its metadata: it was not stored by modelctl; remove it "
                "and store the artifact again"
            )
        return Artifact(key, str(digest), int(head.get("ContentLength", 0)))

    def put_file(self, key: str, path: Path) -> Artifact:
        check_key(key)
        if not path.is_file():
            raise StoreError(f"cannot store {path} as {self.where(key)}: no such file")
        digest, size = sha256_file(path), path.stat().st_size
        existing = self.stat_file(key)
        if existing is None:
            self._check_conditional_writes()  # mode="create" is If-None-Match: *
            target = f"{self.bucket}/{self.object_key(key)}"

            async def upload() -> bool:
                try:
                    await self.fs._put_file(str(path), target, mode="create", Metadata={SHA256_META: digest})
                except FileExistsError:
                    return False
                return True

            if self._run("upload", key, upload, self.transfer_timeout):
                return Artifact(key, digest, size)
            existing = self.stat_file(key)  # another runner stored it first
        if existing is not None and existing.sha256 != digest:
            raise ArtifactMismatchError(
                f"{self.where(key)} already holds other bytes (sha256 {existing.sha256}, not {digest} of {path}): "
                "artifacts are written once; store this one under a new tag"
            )
        return Artifact(key, digest, size)

    def get_file(self, key: str, dest: Path, sha256: str | None = None) -> Artifact:
        stored = self.stat_file(key)
        if stored is None:
            raise StoreError(f"{self.where(key)} does not exist: the artifact was never stored (or was removed)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(name)
        try:
            source = f"{self.bucket}/{self.object_key(key)}"
            self._run("download", key, lambda: self.fs._get_file(source, str(tmp)), self.transfer_timeout)
            digest = sha256_file(tmp)
            for expected, whose in ((stored.sha256, "its stored sha256"), (sha256, "the expected sha256")):
                if expected is not None and digest != expected:
                    raise ArtifactMismatchError(
                        f"{self.where(key)} downloaded with sha256 {digest}, not {whose} {expected}: "
                        "not the tested file; do not deploy it"
                    )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return Artifact(key, digest, dest.stat().st_size)


def check_prefix(prefix: str) -> str | None:
    try:
        return check_key(prefix)
    except StoreError:
        return None
