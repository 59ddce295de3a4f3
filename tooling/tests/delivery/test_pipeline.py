"""The whole pipeline for one model: stages, one notification, and what a failure leaves (real bentos)."""

from __future__ import annotations

import pytest

from modelctl.delivery import release
from modelctl.delivery.pipeline import StageFailedError, pipeline
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL
from tests.delivery.helpers import appended, config_changed, predict
from tests.stand_ins import http_stand_in

pytestmark = pytest.mark.slow


def test_pipeline_deploys_with_every_stage_ok_and_one_notification(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["pipeline", MODEL, "--skip-tests"]) == 0
    try:
        out = capsys.readouterr().out
        for stage in ("validate", "environment", "train", "build", "load-test gate", "fuzz", "deploy staging"):
            assert stage in out
        assert "live: http://127.0.0.1:" in out and "report:" in out and "stop:  modelctl undeploy" in out
        assert len(slack.requests) == 1 and "deployed" in slack.requests[0].body["text"]
        live = State.of(delivery).ledger.live(MODEL, "staging")
        assert live is not None and live.url is not None
        predict(live.url, delivery)
    finally:
        release.undeploy(delivery, MODEL, "staging")


def test_failing_tests_stop_the_pipeline_before_anything_is_released(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = delivery.model(MODEL)
    records = len(State.of(delivery).ledger.records(MODEL))
    failing = "def test_always_fails():\n    assert 1 + 1 == 3, 'a failing model test'"
    with appended(model.folder / "tests" / "test_train.py", failing), http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        with pytest.raises(StageFailedError, match="stage 'test' failed") as info:
            pipeline(model)
    statuses = {s.name: s.status for s in info.value.run.log.stages}
    assert statuses["test"] == "FAILED" and statuses["load-test gate"] == "not run"
    assert len(State.of(delivery).ledger.records(MODEL)) == records, "nothing was attempted"
    assert len(slack.requests) == 1 and "failed" in slack.requests[0].body["text"]


def test_a_gate_breach_in_the_pipeline_exits_3_with_one_notification(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    with config_changed(delivery, loadtest__max_p90_ms=0.001), http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["pipeline", MODEL, "--skip-tests"]) == 3
    assert len(slack.requests) == 1, "promote announces the failure; the pipeline does not announce it again"
    assert "failed" in slack.requests[0].body["text"] and "P90" in slack.requests[0].body["text"]
