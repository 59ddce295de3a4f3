"""The release ledger and retrain log on the state store: never torn, never lost, readable from any runner,
and a damaged one is a one-line error with the fix, never a traceback."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelctl.ledger import FIELD_TYPES, Ledger, LedgerError, Record, RetrainLog
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import BadTagError, State
from modelctl.statestore import CorruptStateError, LocalStore, Store, open_store
from tests.conftest import Cli
from tests.s3_stand_in import use_s3

# Writer processes are forked from a fork server (a fresh interpreter that imported this module once),
# never from the test process with its S3 server thread; a spawn each would re-import s3fs and botocore
# from source (PYTHONDONTWRITEBYTECODE) for seconds per process.
WORKERS = multiprocessing.get_context("forkserver")
WORKERS.set_forkserver_preload(["tests.test_ledger"])


@pytest.fixture(scope="module", autouse=True)
def _stop_the_fork_server() -> Iterator[None]:
    yield
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # the fork server is a process these tests started


@pytest.fixture(params=["local", "s3"])
def where(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A store location: a folder, or an s3:// URL on the test server (with the environment to reach it)."""
    if request.param == "local":
        return str(tmp_path / "state")
    return use_s3(monkeypatch, request.getfixturevalue("s3_endpoint"))


def store_at(where: str) -> Store:
    return open_store(where, base=Path.cwd()) if where.startswith("s3://") else LocalStore(Path(where))


def store_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "MODELCTL_"))}


def deployed(bento: str, env: str = "staging", **fields: object) -> Record:
    return Record(model="m", env=env, target="local", outcome="deployed", bento=bento, **fields)  # type: ignore[arg-type]


# --- what the ledger answers ------------------------------------------------------------------------


def test_versions_count_successful_deploys(where: str) -> None:
    ledger = Ledger(store_at(where))
    assert ledger.append(deployed("m:a")).version == 1
    assert ledger.append(Record(model="m", env="staging", target="local", outcome="failed", bento="m:x")).version == 0
    assert ledger.append(deployed("m:b")).version == 2
    assert ledger.live("m", "staging").bento == "m:b"  # type: ignore[union-attr]
    assert ledger.previous_good("m", "staging", ledger.live("m", "staging")).bento == "m:a"  # type: ignore[union-attr]
    assert ledger.find_version("m", "staging", 1).bento == "m:a"  # type: ignore[union-attr]
    assert ledger.live("m", "production") is None


def test_releases_are_numbered_per_environment(where: str) -> None:
    """Issue 23: one bento released to staging and then production is v1 in both, not v1 and v2."""
    ledger = Ledger(store_at(where))
    assert ledger.append(deployed("m:a")).version == 1
    assert ledger.append(deployed("m:a", env="production")).version == 1
    assert ledger.append(deployed("m:b")).version == 2
    assert ledger.append(deployed("m:b", env="production")).version == 2
    back = ledger.append(Record(model="m", env="production", target="local", outcome="rolled_back", bento="m:a",
                                version=ledger.find_version("m", "production", 1).version))  # type: ignore[union-attr]  # fmt: skip
    assert back.version == 1
    assert ledger.append(deployed("m:c")).version == 3
    stored = json.loads(store_at(where).read("ledger/m.json").data)["records"]  # type: ignore[union-attr]
    assert [(r["env"], r["version"]) for r in stored] == [
        ("staging", 1), ("production", 1), ("staging", 2), ("production", 2), ("production", 1), ("staging", 3)
    ]  # fmt: skip
    assert [(r.env, r.version) for r in ledger.records("m")] == [(r["env"], r["version"]) for r in stored]
    assert ledger.find_version("m", "production", 2).bento == "m:b"  # type: ignore[union-attr]
    assert ledger.find_version("m", "production", 3) is None
    assert ledger.live("m", "production").version == 1  # type: ignore[union-attr]


def test_a_ledger_with_one_counter_across_environments_reads_per_environment(where: str) -> None:
    """Ledgers written before issue 23 (v1 staging, v2 production, v3 staging, ...) still load, renumbered."""
    store = store_at(where)

    def old(env: str, bento: str, outcome: str, version: int) -> dict[str, object]:
        return {"model": "m", "env": env, "target": "local", "outcome": outcome, "bento": bento, "version": version}

    records = [
        old("staging", "m:a", "deployed", 1),
        old("production", "m:a", "deployed", 2),
        old("staging", "m:b", "failed", 0),
        old("staging", "m:b", "deployed", 3),
        old("production", "m:b", "deployed", 4),
        old("production", "m:a", "rolled_back", 2),  # went back to what the old counter called v2
    ]
    store.write("ledger/m.json", json.dumps({"model": "m", "records": records}).encode())
    ledger = Ledger(store)
    assert [r.version for r in ledger.records("m")] == [1, 1, 0, 2, 2, 1]
    assert ledger.live("m", "production").version == 1  # type: ignore[union-attr]
    assert ledger.find_version("m", "staging", 2).bento == "m:b"  # type: ignore[union-attr]
    assert ledger.append(deployed("m:c", env="production")).version == 3
    assert ledger.append(deployed("m:c")).version == 3


def test_undeploy_and_rollback_change_what_is_live(where: str) -> None:
    ledger = Ledger(store_at(where))
    ledger.append(deployed("m:a", git_commit="aaaaaaaaaaaa"))
    ledger.append(deployed("m:b", git_commit="bbbbbbbbbbbb"))
    assert ledger.deployed_commit("m", "staging") == "bbbbbbbbbbbb"
    ledger.append(
        Record(
            model="m",
            env="staging",
            target="local",
            outcome="rolled_back",
            bento="m:a",
            version=1,
            git_commit="aaaaaaaaaaaa",
        )
    )
    assert ledger.live("m", "staging").bento == "m:a"  # type: ignore[union-attr]
    assert ledger.deployed_commit("m", "staging") == "aaaaaaaaaaaa"
    ledger.append(Record(model="m", env="staging", target="local", outcome="undeployed"))
    assert ledger.live("m", "staging") is None and ledger.deployed_commit("m", "staging") is None


def test_records_carry_time_trigger_and_id(where: str) -> None:
    record = Ledger(store_at(where)).append(deployed("m:a"))
    assert record.at.endswith("+00:00") and "@" in record.triggered_by and len(record.id) == 32


def test_an_append_retried_after_a_lost_response_lands_once(where: str) -> None:
    ledger = Ledger(store_at(where))
    record = ledger.append(deployed("m:a"))
    again = ledger.append(Record(**{**record.__dict__}))  # same id: what a retry after a lost response sends
    assert again.version == record.version == 1 and len(ledger.records("m")) == 1


def test_the_retrain_log_sits_beside_the_ledger(where: str) -> None:
    log = RetrainLog(store_at(where))
    log.append("m", {"decision": "kept champion", "candidate": {"accuracy": 0.8}})
    log.append("m", {"decision": "promoted"})
    assert [run["decision"] for run in log.records("m")] == ["kept champion", "promoted"]
    assert store_at(where).list("ledger/") == ["ledger/m.retrain.json"]


def test_the_file_is_plain_json_where_it_always_was(tmp_path: Path) -> None:
    Ledger(tmp_path).append(deployed("m:a"))  # Ledger(folder): the old signature
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["model"] == "m" and data["records"][0]["bento"] == "m:a"
    state = State(tmp_path)
    state.ledger.append(deployed("m:b"))
    assert json.loads((tmp_path / "ledger" / "m.json").read_text())["records"][0]["bento"] == "m:b"


def test_every_record_field_has_a_stored_type() -> None:
    assert set(FIELD_TYPES) == set(Record.__dataclass_fields__)


# --- racing and dying writers -------------------------------------------------------------------------


def _hammer(where: str, worker: int, count: int, env: dict[str, str]) -> None:
    os.environ.update(env)  # a forked worker has the fork server's environment, not this test's
    ledger = Ledger(store_at(where))
    for index in range(count):
        ledger.append(deployed(f"m:{worker}-{index}"))


@pytest.mark.slow
def test_two_processes_racing_lose_nothing(where: str) -> None:
    workers = [WORKERS.Process(target=_hammer, args=(where, w, 50, store_env())) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=240)
        assert worker.exitcode == 0
    records = Ledger(store_at(where)).records("m")
    assert len(records) == 100
    assert sorted(r.version for r in records) == list(range(1, 101))
    assert {r.bento for r in records} == {f"m:{w}-{i}" for w in range(2) for i in range(50)}


def _wait_for_records(ledger: Ledger, at_least: int, process: multiprocessing.process.BaseProcess) -> None:
    deadline = time.monotonic() + 120
    while len(ledger.records("m")) < at_least:
        assert process.is_alive() and time.monotonic() < deadline, "the writer never got going"
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_writer_leaves_the_ledger_readable(where: str) -> None:
    ledger = Ledger(store_at(where))
    for attempt in range(2):
        worker = WORKERS.Process(target=_hammer, args=(where, attempt, 10_000, store_env()))
        worker.start()
        _wait_for_records(ledger, 3 * (attempt + 1), worker)
        time.sleep(0.03 * attempt)  # land the kill at another point of the write cycle
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        worker.join()
        records = ledger.records("m")  # parses: never a torn document
        assert records and all(r.bento for r in records)
        assert Ledger(store_at(where)).append(deployed(f"m:after-{attempt}")).version == len(records) + 1
    if not where.startswith("s3://"):
        leftovers = [p.name for p in (Path(where) / "ledger").iterdir() if p.suffix == ".tmp"]
        assert len(leftovers) <= 2, leftovers


# --- a fresh runner --------------------------------------------------------------------------------------


def test_a_fresh_runner_sees_what_the_previous_one_recorded(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    (tmp_path / "repo").mkdir()
    repo = Repo(tmp_path / "repo")
    archive = tmp_path / "m.bento"
    archive.write_bytes(b"the bento that won" * 1000)

    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner-1"))
    first = State.of(repo)
    first.ledger.append(
        Record(
            model="m",
            env="production",
            target="bentocloud",
            outcome="deployed",
            bento="m:v1",
            git_commit="0123456789ab",
        )
    )
    first.retrain_log.append("m", {"decision": "promoted", "candidate": {"accuracy": 0.93}})
    first.put_gate_result("m:v1", {"bento": "m:v1", "passed": True, "p90_ms": 41.0})
    stored = first.put_artifact("bento", "m:v1", archive)

    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner-2"))
    second = State.of(repo)
    assert second.root == tmp_path / "runner-2" and second.store.url == first.store.url
    live = second.ledger.live("m", "production")
    assert live is not None and live.bento == "m:v1" and live.version == 1
    assert second.ledger.deployed_commit("m", "production") == "0123456789ab"
    assert second.retrain_log.records("m")[-1]["candidate"] == {"accuracy": 0.93}
    assert second.gate_result("m:v1") == {"bento": "m:v1", "passed": True, "p90_ms": 41.0}
    assert second.gate_result("m:v2") is None
    pulled = second.get_artifact("bento", "m:v1", tmp_path / "pulled" / "m.bento", sha256=stored.sha256)
    assert pulled == stored and (tmp_path / "pulled" / "m.bento").read_bytes() == archive.read_bytes()
    assert not (tmp_path / "runner-1").exists() and not (tmp_path / "runner-2").exists(), "nothing shared is local"


def test_gate_results_live_in_the_shared_store(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELCTL_STORE", use_s3(monkeypatch, s3_endpoint))
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner"))
    state = State.of(Repo(tmp_path))
    state.put_gate_result("m:v2", {"bento": "m:v2", "passed": True})
    assert state.store.list("gates/") == ["gates/m/v2.json"] and not (tmp_path / "runner" / "gates").exists()
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "another-runner"))
    assert State.of(Repo(tmp_path)).gate_result("m:v2") == {"bento": "m:v2", "passed": True}
    state.store.write("gates/m/v3.json", b"[1]")
    with pytest.raises(CorruptStateError, match="is not a gate result.*modelctl loadtest m --bento m:v3"):
        state.gate_result("m:v3")


def test_tags_are_names_not_paths(tmp_path: Path) -> None:
    state = State(tmp_path)
    for tag in ("x:../../../../tmp/evil", "../x:1", "x", "x:", "x:a/b"):
        with pytest.raises(BadTagError, match="expected NAME:VERSION"):
            state.gate_result(tag)
    assert State.gate_key("m:v1") == "gates/m/v1.json"


# --- damaged ledgers ------------------------------------------------------------------------------------

GOOD = {"model": "m", "env": "staging", "target": "local", "outcome": "deployed", "bento": "m:a", "version": 1}
CORRUPT = {
    "a JSON list": (b"[]", 'expected a JSON object with "records", found a list'),
    "records not a list": (json.dumps({"records": {}}).encode(), '"records" should be a list, found an object'),
    "no records": (json.dumps({"model": "m"}).encode(), '"records" should be a list, found nothing'),
    "a record that is a string": (json.dumps({"records": ["x"]}).encode(), "entry 1 of 1 is a string, not an object"),
    "a wrong type": (
        json.dumps({"records": [GOOD, {**GOOD, "version": "3"}]}).encode(),
        "entry 2 of 2 field 'version' should be an integer, found a string",
    ),
    "a boolean version": (
        json.dumps({"records": [{**GOOD, "version": True}]}).encode(),
        "field 'version' should be an integer, found true/false",
    ),
    "a missing field": (json.dumps({"records": [{"model": "m"}]}).encode(), "entry 1 of 1 has no 'env'"),
    "a text metric": (
        json.dumps({"records": [{**GOOD, "metrics": {"accuracy": "high"}}]}).encode(),
        "metric 'accuracy' should be a number, found a string",
    ),
    "a tag that is a path": (
        json.dumps({"records": [{**GOOD, "bento": "../../../../tmp/evil:x"}]}).encode(),
        "bento '../../../../tmp/evil:x': name '../../../../tmp/evil' is not a plain name",
    ),
    "another model's bento": (
        json.dumps({"records": [{**GOOD, "bento": "other:v1"}]}).encode(),
        "field 'bento' is 'other:v1', a bento of another model than 'm'",
    ),
    "an unknown outcome": (
        json.dumps({"records": [{**GOOD, "outcome": "exploded"}]}).encode(),
        "field 'outcome' is 'exploded', not one of deployed, failed",
    ),
    "an unknown environment": (
        json.dumps({"records": [{**GOOD, "env": "prod"}]}).encode(),
        "field 'env' is 'prod', not one of staging, production",
    ),
    "a negative version": (json.dumps({"records": [{**GOOD, "version": -5}]}).encode(), "not a version number"),
    "bad UTF-8": (b'{"records": ["\xff"]}', "is not UTF-8 text (byte 0xff at offset 14)"),
    "not JSON": (b"{not json", "is not valid JSON (Expecting property name enclosed in double quotes"),
}


@pytest.mark.parametrize("damage", CORRUPT)
def test_a_damaged_ledger_is_one_line_naming_it_and_the_fix(where: str, damage: str) -> None:
    content, problem = CORRUPT[damage]
    store = store_at(where)
    store.write("ledger/m.json", content)
    ledger = Ledger(store)
    for read in (
        lambda: ledger.records("m"),
        lambda: ledger.live("m", "staging"),
        lambda: ledger.append(deployed("m:b")),
    ):
        with pytest.raises(CorruptStateError) as caught:
            read()
        message = str(caught.value)
        assert problem in message, message
        assert message.startswith(store.where("ledger/m.json")) and "\n" not in message
        assert "restore the previous version with `modelctl ledger restore m`" in message
    assert store.read("ledger/m.json").data == content, "never overwritten"  # type: ignore[union-attr]


def test_a_damaged_retrain_log_names_its_own_restore(where: str) -> None:
    store = store_at(where)
    store.write("ledger/m.retrain.json", b'{"runs": [1]}')
    with pytest.raises(LedgerError, match=r"entry 1 of 1 is a number; .*`modelctl ledger restore m --retrain-log`"):
        RetrainLog(store).append("m", {"decision": "promoted"})


def test_fields_from_a_newer_modelctl_are_read_and_kept(where: str) -> None:
    store = store_at(where)
    newer = {"model": "m", "schema": 2, "records": [{**GOOD, "approved_by": "ops", "metrics": {"auc": 0.9}}]}
    store.write("ledger/m.json", json.dumps(newer).encode())
    ledger = Ledger(store)
    assert ledger.live("m", "staging").bento == "m:a"  # type: ignore[union-attr]
    assert ledger.append(deployed("m:b")).version == 2
    document = json.loads(store.read("ledger/m.json").data)  # type: ignore[union-attr]
    assert document["schema"] == 2 and document["records"][0]["approved_by"] == "ops"


# --- `modelctl ledger restore` ------------------------------------------------------------------------


@pytest.fixture
def repo_env(where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A bare monorepo (modelctl finds it) whose store is ``where``; the store."""
    root = tmp_path / "repo"
    (root / "models").mkdir(parents=True)
    (root / "cookiecutter-model").mkdir()
    monkeypatch.setenv("MODELCTL_ROOT", str(root))
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "runner"))
    monkeypatch.setenv("MODELCTL_STORE", where)
    return store_at(where)


def test_restore_puts_back_the_version_before_the_damage(repo_env: Store, capsys: pytest.CaptureFixture[str]) -> None:
    ledger = Ledger(repo_env)
    ledger.append(deployed("m:a"))
    ledger.append(deployed("m:b"))
    repo_env.write("ledger/m.json", b"[]")  # damaged outside modelctl
    assert main(["ledger", "restore", "m"]) == 0
    assert "restored the previous ledger of m (1 entries)" in capsys.readouterr().out
    assert [r.bento for r in ledger.records("m")] == ["m:a"]
    assert ledger.append(deployed("m:c")).version == 2
    assert repo_env.read("ledger/m.json.prev").data != b"[]"  # type: ignore[union-attr]


def test_restore_without_a_previous_version_says_so(repo_env: Store, capsys: pytest.CaptureFixture[str]) -> None:
    repo_env.write("ledger/m.json", b"[]")
    assert main(["ledger", "restore", "m"]) == 1
    error = capsys.readouterr().err.strip()
    assert "m.json.prev does not exist: no earlier version" in error and "\n" not in error
    repo_env.write("ledger/m.json.prev", b"{}")
    assert main(["ledger", "restore", "m"]) == 1
    assert '"records" should be a list, found nothing; repair it by hand' in capsys.readouterr().err


def test_restore_the_retrain_log(repo_env: Store, capsys: pytest.CaptureFixture[str]) -> None:
    log = RetrainLog(repo_env)
    log.append("m", {"decision": "promoted"})
    log.append("m", {"decision": "kept champion"})
    repo_env.write("ledger/m.retrain.json", b"\xff")
    assert main(["ledger", "restore", "m", "--retrain-log"]) == 0
    assert [run["decision"] for run in log.records("m")] == ["promoted"]
    assert "restored the previous retrain log of m" in capsys.readouterr().out


def test_commands_report_a_damaged_ledger_in_one_line(
    cli: Cli, monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELCTL_STORE", raising=False)
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(monorepo / ".state"))
    for damage, (content, problem) in CORRUPT.items():
        LocalStore(monorepo / ".state").write("ledger/iris_classifier.json", content)
        result = cli("status", "iris_classifier")
        assert result.code == 1, damage
        assert problem in result.err and "`modelctl ledger restore iris_classifier`" in result.err
        assert result.err.strip().count("\n") == 0, result.err
