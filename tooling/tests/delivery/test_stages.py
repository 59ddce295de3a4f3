"""Stage details are masked when they are set: the table, the markdown summary and the progress lines never show a
password, however the detail got there (issue 20 item 11)."""

from __future__ import annotations

import io
import sys

import pytest
from rich.console import Console

from modelctl import cmd
from modelctl.delivery.stages import StageLog
from modelctl.redact import MASK

URL = "postgresql://ml:S3cr/etPw@db/iris"  # pragma: allowlist secret
LEAKS = ("S3cr", "etPw")


def rendered(log: StageLog) -> str:
    """The table as `modelctl pipeline` prints it, and the markdown the step summary and notification get."""
    console = Console(file=io.StringIO(), width=300, record=True)
    console.print(log.table())
    return console.export_text() + log.markdown()


def assert_masked(text: str) -> None:
    assert not [leak for leak in LEAKS if leak in text], text
    assert f"postgresql://ml:{MASK}@db/iris" in text, text


def test_a_failed_stage_never_shows_the_password_of_the_command_that_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = StageLog("pipeline iris", ["train", "build"])
    # A real failing program whose command line holds a data URL: CommandError's first line names the command.
    argv = [sys.executable, "-c", "import sys; sys.exit(3)", URL]
    with pytest.raises(cmd.CommandError) as info, log.stage("train"):
        cmd.run(argv, what="extracting the training data")
    assert URL in str(info.value), "the error itself is left alone: main() masks what it prints"
    train, build = log.stages
    assert (train.status, build.status) == ("FAILED", "not run")
    assert train.detail.startswith("extracting the training data") and "exited 3" in train.detail
    assert_masked(train.detail)
    assert_masked(rendered(log))
    assert not [leak for leak in LEAKS if leak in capsys.readouterr().err]


def test_a_secret_spanning_lines_is_masked_before_the_first_line_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END KEY-----"  # pragma: allowlist secret
    monkeypatch.setenv("DEPLOY_API_KEY", secret)
    log = StageLog("pipeline iris", ["deploy staging"])
    with pytest.raises(RuntimeError), log.stage("deploy staging"):
        raise RuntimeError(f"bad key {secret}")
    assert log.stages[0].detail == f"bad key {MASK}"


def test_a_recorded_detail_is_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    # How promote records a deploy that failed, and the background tests record theirs.
    monkeypatch.setenv("IRIS_CLASSIFIER_DATA_URL", "mysql://reader@warehouse.internal/iris")
    log = StageLog("promote iris -> staging", ["deploy staging", "watch"])
    log.record("deploy staging", 1.5, f"cannot reach {URL}", status="FAILED")
    log.record("watch", 0.0, "reads mysql://reader@warehouse.internal/iris", status="not run")
    deploy, watch = log.stages
    assert_masked(deploy.detail)
    assert watch.detail == f"reads {MASK}", "a data URL is masked whole, host and database included"
    assert_masked(rendered(log))


def test_a_detail_a_stage_sets_itself_is_masked_in_the_progress_line(capsys: pytest.CaptureFixture[str]) -> None:
    log = StageLog("pipeline iris", ["train"])
    with log.stage("train") as stage:
        stage.detail = f"trained from {URL}"
    err = capsys.readouterr().err
    assert "ok in" in err
    assert_masked(err)
    assert_masked(rendered(log))


def test_ordinary_details_are_unchanged() -> None:
    log = StageLog("pipeline iris", ["build"])
    with log.stage("build") as stage:
        stage.detail = "iris_classifier:k3xq2mhf5cvbqaav http://127.0.0.1:3000/@scope/x"
    assert log.stages[0].detail == "iris_classifier:k3xq2mhf5cvbqaav http://127.0.0.1:3000/@scope/x"
