"""Slack notifications against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelctl.notify import Message, notify, post_slack
from tests.stand_ins import http_stand_in

MESSAGE = Message(
    title="iris_classifier deployed (staging)",
    model="iris_classifier",
    verdict="deployed",
    env="staging",
    version="v3",
    facts={"P90": "42 ms", "error rate": "0.00%"},
    channel="#ml-deploys",
)


def test_success_posts_a_readable_message() -> None:
    with http_stand_in([200]) as slack:
        assert post_slack(slack.url + "/hook", MESSAGE, backoff_s=0.01)
    (request,) = slack.requests
    assert request.method == "POST" and request.path == "/hook"
    text = request.body["text"]
    for expected in (
        "iris_classifier deployed (staging)",
        "environment: staging",
        "version: v3",
        "P90: 42 ms",
        "verdict: deployed",
    ):
        assert expected in text
    assert request.body["channel"] == "#ml-deploys"


def test_500_then_success_retries() -> None:
    with http_stand_in([500, 429, 200]) as slack:
        assert post_slack(slack.url, MESSAGE, backoff_s=0.01)
    assert len(slack.requests) == 3


def test_always_down_is_a_warning_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with http_stand_in([], default=503) as slack:
        assert post_slack(slack.url, MESSAGE, attempts=3, backoff_s=0.01) is False
    assert len(slack.requests) == 3
    assert "warning: Slack notification failed after 3 attempts (HTTP 503" in capsys.readouterr().err


def test_unreachable_webhook_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    with http_stand_in([]) as slack:
        url = slack.url
    assert post_slack(url, MESSAGE, attempts=2, backoff_s=0.01) is False
    assert "ConnectError" in capsys.readouterr().err


def test_client_error_is_not_retried() -> None:
    with http_stand_in([404]) as slack:
        assert post_slack(slack.url, MESSAGE, backoff_s=0.01) is False
    assert len(slack.requests) == 1


def test_without_webhook_prints_and_writes_step_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/models")
    monkeypatch.setenv("GITHUB_RUN_ID", "42")
    assert notify(MESSAGE, extra_markdown="| a | b |\n") is False
    assert "iris_classifier deployed (staging)" in capsys.readouterr().err
    written = summary.read_text()
    assert written.startswith("### iris_classifier deployed (staging)")
    assert "run: https://github.com/acme/models/actions/runs/42" in written and "| a | b |" in written


def test_the_terminal_gets_the_message_as_written_not_escaped_for_slack(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)
    message = Message(title="pipeline m -> staging", model="m", env="staging", verdict="deployed", facts={"a": "x & y"})
    notify(message)
    err = capsys.readouterr().err
    assert "pipeline m -> staging" in err and "a: x & y" in err and "&gt;" not in err and "&amp;" not in err


def test_with_webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    with http_stand_in([200]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        assert notify(MESSAGE) is True
    assert len(slack.requests) == 1


def test_values_cannot_ping_or_link_in_slack() -> None:
    hostile = Message(title="deploy <!channel>", model="m", verdict="ok", facts={"candidate": "<https://evil|click>"})
    with http_stand_in([200]) as slack:
        assert post_slack(slack.url, hostile, backoff_s=0.01)
    body = slack.requests[0].body
    mrkdwn = body["text"] + body["blocks"][1]["text"]["text"]  # the header block is plain text: never parsed
    assert "<!channel>" not in mrkdwn and "<https://evil" not in mrkdwn
    assert "&lt;!channel&gt;" in body["text"] and "&lt;https://evil|click&gt;" in mrkdwn
