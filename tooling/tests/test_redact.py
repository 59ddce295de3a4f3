"""Passwords in URLs, query strings and connection strings, and secret values, never reach messages, logs or
notifications; ordinary text is left as it is."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from modelctl.redact import MASK, redact


def test_url_passwords_are_masked() -> None:
    url = "postgresql+psycopg://scott:tiger-42@db.internal:5432/prod"  # pragma: allowlist secret
    text = f"query failed at {url} (no rows)"
    assert redact(text) == "query failed at postgresql+psycopg://scott:***@db.internal:5432/prod (no rows)"
    assert redact("s3://bucket/key and https://example.com/a@b and sqlite:////tmp/x.db") == (
        "s3://bucket/key and https://example.com/a@b and sqlite:////tmp/x.db"
    )


# Ids name the form: pytest puts the id in PYTEST_CURRENT_TEST, and redact() masks passwords found in any variable.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # SQLAlchemy reads up to the `@`: a `/` is part of the password
        pytest.param("postgresql://ml:S3cr/etPw@db/iris", "postgresql://ml:***@db/iris", id="slash"),
        pytest.param("redis://:S3cret@cache:6379/0", "redis://:***@cache:6379/0", id="no-user"),
        pytest.param(
            "postgresql://db/iris?user=ml&password=S3cret&sslmode=require",
            "postgresql://db/iris?user=ml&password=***&sslmode=require",
            id="query",
        ),
        pytest.param("postgresql://db/iris?PWD=S3cret", "postgresql://db/iris?PWD=***", id="query-pwd"),
        pytest.param(
            "mysql://db/x?charset=utf8&Passwd=S3%2Fcret#top", "mysql://db/x?charset=utf8&Passwd=***#top", id="passwd"
        ),
        pytest.param(
            "host=db user=ml password=S3cret dbname=iris", "host=db user=ml password=*** dbname=iris", id="libpq"
        ),
        pytest.param(
            "host=db password='a b\\'c' dbname=iris",  # pragma: allowlist secret
            "host=db password=*** dbname=iris",
            id="libpq-quoted",
        ),
        pytest.param(
            'host=db PASSWORD = "a b" port=5432',  # pragma: allowlist secret
            "host=db PASSWORD = *** port=5432",
            id="spaced",
        ),
        pytest.param("failed: host=db password='S3cret", "failed: host=db password=***", id="cut-off"),
        pytest.param(
            "Server=db;Uid=ml;Pwd={a;b};Database=iris", "Server=db;Uid=ml;Pwd=***;Database=iris", id="odbc-braces"
        ),
        pytest.param(
            "run with --password=S3cret or DB_PASSWORD=S3cret",
            "run with --password=*** or DB_PASSWORD=***",
            id="flag-and-variable",
        ),
    ],
)
def test_every_common_form_of_password_is_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("http://host:8080/path", id="port"),
        pytest.param("http://localhost:4873/@babel/core is the registry", id="port-then-at"),
        pytest.param("mail ml@example.com about https://example.com/a@b?x=1&y=2", id="email-and-at"),
        pytest.param("password authentication failed for user 'ml'; check passwords.md", id="prose"),
        pytest.param("if password == expected: mypassword=unchanged", id="code"),
        pytest.param("password=\nnext line", id="empty-value"),
        pytest.param("cwd=/tmp pwd: /srv", id="pwd-colon"),
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) == text


def test_secret_values_from_the_environment_are_masked_anywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAUD_DATA_URL", "mysql://u:hunter2pw@h/db")  # pragma: allowlist secret
    webhook = "https://hooks.slack.com/services/T0/B0/abcdefghijkl"  # pragma: allowlist secret
    monkeypatch.setenv("SLACK_WEBHOOK_URL", webhook)
    text = f"password hunter2pw was rejected; posting to {webhook}"
    assert "hunter2pw" not in redact(text) and "abcdefghijkl" not in redact(text)


def test_a_data_url_is_masked_whole_and_its_password_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql://ml:S3cr%2FetPw@db.internal:5432/iris?sslmode=require"  # pragma: allowlist secret
    monkeypatch.setenv("IRIS_CLASSIFIER_DATA_URL", url)
    monkeypatch.setenv("CHURN_DATA_URL", "mssql://db.internal/churn?Pwd=Tr0ub4dor")  # pragma: allowlist secret
    monkeypatch.setenv("WAREHOUSE_DSN", "host=db password='c0rrect\\'horse'")  # pragma: allowlist secret
    assert redact(f"cannot connect to {url}: timeout") == "cannot connect to ***: timeout"
    # a driver's own messages show the password decoded, unquoted, or on its own
    text = "password S3cr/etPw rejected; S3cr%2FetPw; Tr0ub4dor; c0rrect'horse"  # pragma: allowlist secret
    assert redact(text) == "password *** rejected; ***; ***; ***"
    assert redact("host db.internal is down") == "host db.internal is down"


# Passwords as hypothesis generates them: any text without whitespace (it ends a URL in prose), with URL
# delimiters drawn often (from arbitrary characters alone, a `/` is rare).
_NO_SPACE = st.one_of(
    st.sampled_from(":/?#[]!$&'()*+,;=%\\\""), st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp"))
)


@contextmanager
def _empty_environment() -> Iterator[None]:
    """No variable of this machine's environment can mask (or fail to mask) the generated text."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            patch.delenv(name)
        yield


@given(st.text(_NO_SPACE.filter(lambda c: c != "@"), min_size=1))
def test_any_url_password_is_masked(password: str) -> None:
    # The one documented exception: host:PORT/path@... is read as a port and a path, not as a password.
    assume(not re.match(r"\d{1,5}/", password))
    with _empty_environment():
        url = "postgresql+psycopg://ml:{}@db.internal:5432/iris"
        assert redact(f"at {url.format(password)} (timeout)") == f"at {url.format(MASK)} (timeout)"


@given(st.text(_NO_SPACE.filter(lambda c: c not in "&#"), min_size=1), st.sampled_from(["password", "PWD", "passwd"]))
def test_any_query_password_is_masked(password: str, key: str) -> None:
    with _empty_environment():
        url = "postgresql://db.internal/iris?user=ml&{}={}&sslmode=require"
        assert redact(url.format(key, password)) == url.format(key, MASK)


@given(st.text(st.characters(codec="utf-8"), min_size=1))
def test_any_quoted_libpq_password_is_masked(password: str) -> None:
    with _empty_environment():
        quoted = "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"
        assert redact(f"host=db password={quoted} dbname=iris") == "host=db password=*** dbname=iris"


@given(st.from_regex(r"https?://[a-z][a-z.]{0,20}(:[0-9]{1,5})?(/[\w.@~-]{0,20}){0,3}", fullmatch=True))
def test_a_url_without_credentials_is_never_changed(url: str) -> None:
    with _empty_environment():
        assert redact(f"see {url} for details") == f"see {url} for details"
