"""The state store: the local folder and a real S3-compatible server (moto's) on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from modelctl.statestore import (
    Artifact,
    ArtifactMismatchError,
    Blob,
    CorruptStateError,
    LocalStore,
    Store,
    StoreError,
    VersionConflictError,
    configured_store,
    open_store,
)
from tests.s3_stand_in import AWS_TEST_ENV, moto_server, use_s3

T = TypeVar("T")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    if request.param == "local":
        return LocalStore(tmp_path / "state")
    url = use_s3(monkeypatch, request.getfixturevalue("s3_endpoint"))
    return open_store(url, base=tmp_path)


# --- both backends -------------------------------------------------------------------------------


def test_round_trip_with_versions(store: Store) -> None:
    assert store.read("ledger/m.json") is None
    first = store.write_if("ledger/m.json", b"one", None)
    blob = store.read("ledger/m.json")
    assert blob is not None and blob.data == b"one" and blob.version == first
    second = store.write_if("ledger/m.json", b"two", first)
    assert second != first and store.read("ledger/m.json") == type(blob)(b"two", second)
    store.write("other/x.json", b"{}")
    assert store.list("ledger/") == ["ledger/m.json"]
    assert store.list() == ["ledger/m.json", "other/x.json"]
    assert store.shared is store.url.startswith("s3://")


def test_compare_and_swap_conflicts_are_detected(store: Store) -> None:
    version = store.write_if("k.json", b"a", None)
    with pytest.raises(VersionConflictError, match="k.json"):
        store.write_if("k.json", b"b", None)  # create only if absent
    store.write_if("k.json", b"c", version)
    with pytest.raises(VersionConflictError):
        store.write_if("k.json", b"d", version)  # a stale version
    blob = store.read("k.json")
    assert blob is not None and blob.data == b"c"


def test_update_json_keeps_the_previous_version_and_restores_it(store: Store) -> None:
    assert store.update_json("doc.json", lambda doc: (doc or []) + [1]) == [1]
    assert store.update_json("doc.json", lambda doc: doc + [2]) == [1, 2]
    assert store.read_json("doc.json.prev") is not None
    assert store.read_json("doc.json.prev")[0] == [1]  # type: ignore[index]
    assert store.list() == ["doc.json"], "the .prev copy is not a key of its own"
    store.write("doc.json", b"\xff broken")
    with pytest.raises(CorruptStateError, match=r"doc\.json is not UTF-8 text .*restore the previous version"):
        store.update_json("doc.json", lambda doc: doc + [3])
    assert store.read("doc.json").data == b"\xff broken", "a damaged document is never overwritten"  # type: ignore[union-attr]
    assert store.restore("doc.json") == [1]  # the version the last update replaced
    assert store.read_json("doc.json") is not None
    assert store.read("doc.json.prev").data == b"\xff broken", "a restore can be undone"  # type: ignore[union-attr]


def test_update_json_writes_nothing_when_nothing_changes(store: Store) -> None:
    store.update_json("doc.json", lambda _doc: {"a": 1})
    version = store.read("doc.json").version  # type: ignore[union-attr]
    store.update_json("doc.json", lambda doc: doc)
    assert store.read("doc.json").version == version  # type: ignore[union-attr]


def test_artifacts_are_stored_once_and_checked_on_the_way_back(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "m.bento"
    archive.write_bytes(os.urandom(300_000))
    stored = store.put_file("artifacts/bentos/m/v1.bento", archive)
    assert stored.size == 300_000 and len(stored.sha256) == 64
    assert store.put_file("artifacts/bentos/m/v1.bento", archive) == stored, "the same bytes again: a no-op"
    assert store.stat_file("artifacts/bentos/m/v1.bento") == stored

    other = tmp_path / "other.bento"
    other.write_bytes(b"other bytes")
    with pytest.raises(ArtifactMismatchError, match="already holds other bytes"):
        store.put_file("artifacts/bentos/m/v1.bento", other)

    back = tmp_path / "back" / "m.bento"
    assert store.get_file("artifacts/bentos/m/v1.bento", back, sha256=stored.sha256) == stored
    assert back.read_bytes() == archive.read_bytes()
    elsewhere = tmp_path / "elsewhere.bento"
    with pytest.raises(ArtifactMismatchError, match="not the tested file"):
        store.get_file("artifacts/bentos/m/v1.bento", elsewhere, sha256="0" * 64)
    assert not elsewhere.exists() and not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert store.stat_file("artifacts/bentos/m/v2.bento") is None
    with pytest.raises(StoreError, match="never stored"):
        store.get_file("artifacts/bentos/m/v2.bento", elsewhere)


@pytest.mark.parametrize("key", ["../x.json", "/abs.json", "a//b.json", "a/../b.json", ".hidden", "a/.lock", ""])
def test_keys_never_leave_the_store(store: Store, key: str) -> None:
    with pytest.raises(StoreError, match="not a valid state-store key"):
        store.read(key)
    with pytest.raises(StoreError, match="not a valid state-store key"):
        store.write_if(key, b"x", None)


# --- S3 only ---------------------------------------------------------------------------------------


def test_a_missing_bucket_is_named_with_the_fix(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    use_s3(monkeypatch, s3_endpoint)
    store = open_store("s3://no-such-bucket-here/state", base=Path.cwd())
    for action in (lambda: store.read("ledger/m.json"), lambda: store.update_json("ledger/m.json", lambda d: d)):
        with pytest.raises(StoreError) as caught:
            action()
        message = str(caught.value)
        assert "bucket 'no-such-bucket-here' does not exist" in message
        assert "aws s3 mb s3://no-such-bucket-here" in message and "\n" not in message


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_endpoint_that_is_down_fails_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MODELCTL_STORE_TIMEOUT", "10")
    endpoint = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    store = open_store("s3://bucket/state", endpoint_url=endpoint, base=Path.cwd())
    with pytest.raises(StoreError, match=rf"cannot reach {endpoint} to read s3://bucket/state/ledger/m.json"):
        store.read("ledger/m.json")


def test_an_endpoint_that_never_answers_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in AWS_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    with socket.socket() as silent:  # accepts connections (the kernel does) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = open_store("s3://bucket/state", endpoint_url=endpoint, timeout=1.0, base=Path.cwd())
        with pytest.raises(StoreError, match=rf"no answer from {endpoint} within 1s"):
            store.read("ledger/m.json")


def test_missing_credentials_are_named(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = use_s3(monkeypatch, s3_endpoint)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StoreError, match="no AWS credentials .* set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        open_store(url, base=Path.cwd()).read("ledger/m.json")


def _every_object(endpoint: str, url: str) -> list[str]:
    """All keys in the bucket of the store at ``url``, its hidden ones too (which ``Store.list`` leaves out)."""
    import boto3

    bucket = url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    return [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.parametrize(
    "ignored",
    [("If-None-Match",), ("If-Match",), ("If-Match", "If-None-Match")],
    ids=["if-none-match", "if-match", "both"],
)
def test_a_server_that_ignores_a_conditional_write_header_is_refused(
    ignored: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "m.bento"
    archive.write_bytes(b"a bento")
    with moto_server(ignore=ignored) as endpoint:
        url = use_s3(monkeypatch, endpoint)
        bucket = url.removeprefix("s3://").split("/")[0]
        store = open_store(url, base=tmp_path)
        creates = (  # the first ledger record, the first lease, a write-once artifact
            lambda: store.update_json("ledger/m.json", lambda _doc: {"records": []}),
            lambda: store.write_if("leases/m.json", b"{}", None),
            lambda: store.put_file("artifacts/bentos/m/v1.bento", archive),
        )
        for create in creates:
            with pytest.raises(StoreError) as caught:
                create()
            message = str(caught.value)
            assert message.startswith(
                f"{endpoint} ignores S3 conditional writes ({' and '.join(ignored)}) on bucket '{bucket}': "
            )
            assert message.endswith(
                "use a server that honours both If-Match and If-None-Match on PutObject (AWS S3, MinIO)"
            )
            assert "\n" not in message
        assert _every_object(endpoint, url) == [], "nothing written, every probe removed"


def test_racing_creates_have_exactly_one_winner(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = use_s3(monkeypatch, s3_endpoint)
    store = open_store(url, base=tmp_path)  # unprobed: the racers' first writes check the server at once
    racers = 6

    def race(create: Callable[[int], T]) -> list[T | StoreError]:
        start = threading.Barrier(racers)

        def run(n: int) -> T | StoreError:
            start.wait()
            try:
                return create(n)
            except StoreError as exc:
                return exc

        with ThreadPoolExecutor(racers) as pool:
            return list(pool.map(run, range(racers)))

    versions = race(lambda n: store.write_if("leases/m.json", f"runner {n}".encode(), None))
    won = [n for n, result in enumerate(versions) if isinstance(result, str)]
    assert len(won) == 1, versions
    assert all(isinstance(result, VersionConflictError) for n, result in enumerate(versions) if n != won[0])
    assert store.read("leases/m.json") == Blob(f"runner {won[0]}".encode(), str(versions[won[0]]))

    archives = [tmp_path / f"{n}.bento" for n in range(racers)]
    for n, archive in enumerate(archives):
        archive.write_bytes(f"bento of runner {n}".encode())
    stored = race(lambda n: store.put_file("artifacts/bentos/m/v1.bento", archives[n]))
    won = [n for n, result in enumerate(stored) if isinstance(result, Artifact)]
    assert len(won) == 1, stored
    assert all(isinstance(result, ArtifactMismatchError) for n, result in enumerate(stored) if n != won[0]), stored
    assert store.stat_file("artifacts/bentos/m/v1.bento") == stored[won[0]]
    assert sorted(_every_object(s3_endpoint, url)) == [
        "team/state/artifacts/bentos/m/v1.bento",
        "team/state/leases/m.json",
    ], "every probe removed"


def test_store_urls_name_what_is_supported(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported scheme 'gs'.*S3 interoperability"):
        open_store("gs://bucket/x", base=tmp_path)
    with pytest.raises(StoreError, match="not an S3 URL"):
        open_store("s3://", base=tmp_path)
    assert isinstance(open_store("file:///tmp/x", base=tmp_path), LocalStore)
    assert open_store("relative", base=tmp_path).url == str(tmp_path / "relative")


# --- choosing the store ----------------------------------------------------------------------------


def test_the_environment_beats_pyproject_which_beats_the_local_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELCTL_STORE", raising=False)
    monkeypatch.delenv("MODELCTL_STORE_ENDPOINT_URL", raising=False)
    repo, state = tmp_path / "repo", tmp_path / "state"
    repo.mkdir()
    assert configured_store(repo, state).url == str(state)
    (repo / "pyproject.toml").write_text('[tool.modelctl]\nstore = "shared-state"\n')
    chosen = configured_store(repo, state)
    assert chosen.url == str(repo / "shared-state") and "pyproject.toml" in chosen.origin
    monkeypatch.setenv("MODELCTL_STORE", str(tmp_path / "from-env"))
    assert configured_store(repo, state).url == str(tmp_path / "from-env")
    monkeypatch.setenv("MODELCTL_STORE", "")  # an unset CI variable expands to "": not a store
    assert configured_store(repo, state).url == str(repo / "shared-state")
    (repo / "pyproject.toml").write_text("[tool.modelctl\n")
    with pytest.raises(StoreError, match="pyproject.toml cannot be read to find the state store"):
        configured_store(repo, state)


def test_an_s3_store_from_pyproject_uses_its_endpoint(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = use_s3(monkeypatch, s3_endpoint)
    monkeypatch.delenv("MODELCTL_STORE_ENDPOINT_URL")
    pyproject = f'[tool.modelctl]\nstore = "{url}"\nstore_endpoint_url = "{s3_endpoint}"\n'
    (tmp_path / "pyproject.toml").write_text(pyproject)
    store = configured_store(tmp_path, tmp_path / "state")
    store.update_json("ledger/m.json", lambda _doc: {"records": []})
    assert store.url == url and store.list("ledger/") == ["ledger/m.json"]


def test_a_bad_timeout_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELCTL_STORE", "s3://bucket/x")
    monkeypatch.setenv("MODELCTL_STORE_TIMEOUT", "soon")
    with pytest.raises(StoreError, match="MODELCTL_STORE_TIMEOUT='soon' is not a positive number"):
        configured_store(tmp_path, tmp_path / "state")


@pytest.mark.parametrize("code", ["PreconditionFailed", "ConditionalRequestConflict"])
def test_s3_answers_that_mean_a_lost_race_are_conflicts(code: str, tmp_path: Path) -> None:
    from botocore.exceptions import ClientError

    from modelctl.statestore.s3 import S3Store

    store = S3Store("s3://bucket/x", endpoint_url="http://127.0.0.1:9")
    error = OSError("translated by s3fs")
    error.__cause__ = ClientError({"Error": {"Code": code, "Message": "..."}}, "PutObject")
    assert isinstance(store._explain(error, "write", "ledger/m.json"), VersionConflictError)


def test_the_cli_starts_without_the_stores_dependencies() -> None:
    # The pre-commit hook running `modelctl validate` installs only a few of modelctl's dependencies, and
    # s3fs costs about a second to import: both are imported when a store is first used.
    modules = ("filelock", "fsspec", "s3fs", "botocore")
    code = f"import sys, modelctl.main; print([m for m in {modules!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
