"""Promote: one started candidate, the load-test gate, fuzzing, the deploy, one notification (real bentos)."""

from __future__ import annotations

import pytest

from modelctl.delivery import build, fuzzing, gate, promote, release
from modelctl.delivery.stages import StageLog
from modelctl.errors import ModelctlError
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL
from tests.delivery.helpers import appended, config_changed, predict
from tests.stand_ins import http_stand_in

pytestmark = pytest.mark.slow


def test_verify_writes_every_report_and_records_the_pass(delivery: Repo, gated: tuple[str, str]) -> None:
    model = delivery.model(MODEL)
    log = StageLog("verify", ["load-test gate", "fuzz"])
    verified = promote.verify(model, gated[1], log, examples=10)
    files = {p.name for p in verified.report_dir.iterdir()}
    assert {"report.html", "locust_stats.csv", "summary.json", "summary.md", "server.log", "fuzz.json"} <= files
    assert verified.gate.verdict.passed and verified.gate.verdict.requests > 0
    fuzzed = verified.fuzzed.result
    assert fuzzed.server_errors == 0 and {"400", "413", "415"} <= set(fuzzed.by_status) and fuzzed.ready_after
    assert fuzzed.rss_before_mb > 50, "the candidate's memory is measured"
    assert [s.status for s in log.stages] == ["ok", "ok"]
    assert "loadtest_payload.json" in files, "the gate's requests, as data"
    summary = gate.passed_summary(model, gated[1])
    assert summary is not None and summary["bento"] == gated[1] and summary["locust_user"] == "platform"
    fuzz_pass = fuzzing.passed_summary(model, gated[1])
    assert fuzz_pass is not None and fuzz_pass["cases"] == fuzzed.cases and fuzz_pass["examples"] == 10
    assert release.unverified(model, gated[1]) is None, "the pipeline's road records both passes"


def test_promote_deploys_and_sends_one_notification(
    delivery: Repo, gated: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = delivery.model(MODEL)
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        result = promote.promote(model, gated[1], "staging", approved=False, examples=5)
    try:
        assert result.deployed and result.record is not None and result.record.url
        assert [p["label"] for p in predict(result.record.url, delivery)] == ["setosa", "virginica"]
        assert len(slack.requests) == 1, "one run, one notification"
        text = slack.requests[0].body["text"]
        assert "deployed" in text and "P90" in text and "fuzz" in text
    finally:
        release.undeploy(delivery, MODEL, "staging")


def test_a_gate_breach_is_refused_recorded_and_changes_nothing(delivery: Repo, gated: tuple[str, str]) -> None:
    ledger = State.of(delivery).ledger
    before = ledger.live(MODEL, "staging")
    with config_changed(delivery, loadtest__max_p90_ms=0.001) as repo:
        with pytest.raises(gate.GateBreachedError, match="P90 latency") as info:
            promote.promote(repo.model(MODEL), gated[1], "staging", approved=True, examples=5)
    assert info.value.exit_code == 3
    last = ledger.records(MODEL)[-1]
    assert last.outcome == "failed" and last.bento == gated[1] and "P90 latency" in (last.reason or "")
    assert ledger.live(MODEL, "staging") == before


@pytest.mark.parametrize(
    ("file", "code", "why"),
    [
        ("model_io.py", "def load(stored):\n    raise RuntimeError('broken model')", "crashes on start"),
        ("model_io.py", "def predict(model, rows):\n    raise ValueError('bug')", "answers 500"),
    ],
)
def test_a_failing_candidate_never_replaces_what_is_live(
    delivery: Repo, gated: tuple[str, str], file: str, code: str, why: str
) -> None:
    model = delivery.model(MODEL)
    ledger = State.of(delivery).ledger
    live = release.deploy(model, "staging", gated[1], approved=True)
    try:
        with appended(model.folder / file, code):
            broken = build.build(model).bento
        with pytest.raises(ModelctlError):
            promote.promote(model, broken, "staging", approved=True, examples=5)
        last = ledger.records(MODEL)[-1]
        assert (last.outcome, last.bento) == ("failed", broken), why
        current = ledger.live(MODEL, "staging")
        assert current is not None and current.bento == gated[1], why
        assert live.url is not None
        predict(live.url, delivery)  # still answering
    finally:
        release.undeploy(delivery, MODEL, "staging")
