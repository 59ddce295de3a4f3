"""The whole pipeline for one model: stages, one notification, and what a failure leaves (real bentos)."""

from __future__ import annotations

import time

import pytest

from modelctl import bentos
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


SLOW_TEST = "def test_takes_its_time():\n    import time\n    time.sleep(300)"
SMALL_REQUESTS_FAIL = """
_predict = predict


def predict(model, rows):
    if len(rows) < 5:
        raise ValueError('bug')
    return _predict(model, rows)
"""


def test_a_training_failure_stops_the_tests_at_once_and_is_what_the_run_blames(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = delivery.model(MODEL)
    with (
        appended(model.folder / "tests" / "test_train.py", SLOW_TEST),
        appended(model.folder / "model_io.py", "def predict(model, rows):\n    raise ValueError('bug')"),
        http_stand_in([]) as slack,
    ):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        started = time.monotonic()
        with pytest.raises(StageFailedError, match="stage 'train' failed") as info:
            pipeline(model)
        elapsed = time.monotonic() - started
    assert elapsed < 200, "the run did not wait for a 300 s test"
    statuses = {s.name: s.status for s in info.value.run.log.stages}
    assert statuses["train"] == "FAILED" and statuses["test"] == "stopped" and statuses["fuzz"] == "not run"
    assert len(slack.requests) == 1
    assert "failed at: train" in slack.requests[0].body["text"]


def test_a_fuzz_failure_stops_the_tests_and_the_one_notification_has_the_final_table(
    delivery: Repo, gated: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    model = delivery.model(MODEL)
    records = len(State.of(delivery).ledger.records(MODEL))
    with (
        appended(model.folder / "tests" / "test_train.py", SLOW_TEST),
        # Training evaluates a holdout of dozens of rows and passes; the served model fails small requests.
        appended(model.folder / "model_io.py", SMALL_REQUESTS_FAIL),
        http_stand_in([]) as slack,
    ):
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        with pytest.raises(StageFailedError, match="stage 'fuzz' failed") as info:
            pipeline(model)
    statuses = {s.name: s.status for s in info.value.run.log.stages}
    assert statuses["fuzz"] == "FAILED" and statuses["test"] == "stopped"
    assert statuses["load-test gate"] == "not run" and statuses["deploy staging"] == "not run"
    assert len(slack.requests) == 1
    text = slack.requests[0].body["text"]
    assert "test:stopped" in text and "fuzz:FAILED" in text and "pending" not in text
    last = State.of(delivery).ledger.records(MODEL)
    assert len(last) == records + 1 and last[-1].outcome == "failed", "a refused candidate is a recorded attempt"


def test_a_deploy_that_would_be_refused_fails_before_anything_is_trained(
    delivery: Repo, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    newest = bentos.latest_bento(delivery, MODEL)
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert main(["pipeline", MODEL, "--env", "production"]) == 2
    assert "production requires approval: pass --yes" in capsys.readouterr().err
    assert len(slack.requests) == 1 and "failed at: validate" in slack.requests[0].body["text"]
    assert bentos.latest_bento(delivery, MODEL) == newest, "nothing was built"
