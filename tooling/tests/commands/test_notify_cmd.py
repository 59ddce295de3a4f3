from __future__ import annotations

import pytest

from modelctl.errors import UsageError
from modelctl.names import parse_list
from tests.conftest import Cli
from tests.stand_ins import http_stand_in


def test_parse_models() -> None:
    assert parse_list('["a", "b"]') == ["a", "b"]
    assert parse_list("a, b,") == ["a", "b"] and parse_list("a b") == ["a", "b"]
    assert parse_list("") == [] and parse_list(None) is None
    with pytest.raises(UsageError, match="JSON list"):
        parse_list('["a"')


def test_posts_to_slack(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    with http_stand_in([200]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        cli(
            "notify",
            "--title",
            "deploy to production",
            "--verdict",
            "success",
            "--models",
            '["iris_classifier"]',
            "--fact",
            "staging=success",
        ).assert_success()
    text = slack.requests[0].body["text"]
    assert "deploy to production" in text and "model: iris_classifier" in text and "staging: success" in text


def test_bad_fact_is_usage_error(cli: Cli) -> None:
    result = cli("notify", "--title", "t", "--verdict", "v", "--fact", "novalue")
    assert result.code == 2 and "KEY=VALUE" in result.err
