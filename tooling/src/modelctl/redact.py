"""Passwords never leave modelctl: every password we can recognise, and known secret values, are masked in text we emit.

Used on every message, log line, ledger entry and notification that may carry an error from a data
source (a training query that failed prints its SQLAlchemy URL, password included).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from urllib.parse import unquote

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host (SQLAlchemy, S3, HTTP ... URLs).  # pragma: allowlist secret
# SQLAlchemy takes everything up to the `@` as the password, `/` included (postgresql://ml:S3cr/etPw@db/iris,
# issue 20 item 11). The one reading left alone is host:PORT/path...@, a port then a path holding an `@`
# (http://localhost:4873/@scope/pkg): masking it would hide an ordinary URL's port.
_URL_PASSWORD = re.compile(
    r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<password>(?!\d{1,5}/)[^\s@]+|[^\s@/]+)(?P<at>@)"
)
# A key that is, or ends in, password / passwd / pwd (`DB_PASSWORD`, `--password`), case-insensitive.
_KEY = r"(?:[\w.-]*[_.-])?(?:password|passwd|pwd)"
# ...?user=ml&password=S3cret&sslmode=require: the value ends where the next parameter starts.
_QUERY_PASSWORD = re.compile(rf"(?P<head>[?&]{_KEY}=)(?P<password>[^&#\s]+)", re.IGNORECASE)
# libpq key/value strings (`host=db password=...`, quoted values, backslash escapes) and ODBC's
# `Pwd={...}`. An unquoted value ends at whitespace only: libpq allows `&` and `;` in it. An unterminated
# quote masks to the end of the text (a truncated message must not leak the rest of the password).
_KEYWORD_PASSWORD = re.compile(
    rf"(?P<head>(?<![\w.?&-]){_KEY}[ \t]*=[ \t]*)"
    r"(?P<password>'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|\{[^}]*\}?|(?!=)\S+)",
    re.IGNORECASE,
)
_PASSWORDS = (_URL_PASSWORD, _QUERY_PASSWORD, _KEYWORD_PASSWORD)
# Environment variables whose whole value is a secret wherever it appears.
_SECRET_NAMES = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|WEBHOOK|ACCESS_KEY)", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values would mask ordinary words
_MIN_PASSWORD = 4  # a password found inside a variable's value; shorter ones are too likely in plain words


def _is_secret_variable(name: str) -> bool:
    # A data URL names internal hosts and databases besides its password: the whole value is masked.
    return bool(_SECRET_NAMES.search(name)) or name.upper().endswith(("_DATA_URL", "_LABELS_URL"))


def _passwords_in(text: str) -> Iterator[str]:
    """Every password in ``text`` as it may appear elsewhere: without its quotes or braces, and percent-decoded.

    Never with its quotes: masking ``'a b'`` whole would leave ``password=***`` behind, and the patterns would
    then mask whatever follows up to the next space.
    """
    for pattern in _PASSWORDS:
        for match in pattern.finditer(text):
            password = match.group("password")
            if len(password) > 1 and password[0] + password[-1] in ("''", '""'):
                password = re.sub(r"\\(.)", r"\1", password[1:-1])  # libpq's \' and \\
            elif len(password) > 1 and password[0] + password[-1] == "{}":
                password = password[1:-1]
            yield from {password, unquote(password)}


def secrets_in_environment() -> set[str]:
    """Values to mask: secret and data-URL variables' values, and every password inside any variable's value."""
    found = set()
    for name, value in os.environ.items():
        if len(value) >= _MIN_SECRET and _is_secret_variable(name):
            found.add(value)
        found.update(p for p in _passwords_in(value) if len(p) >= _MIN_PASSWORD)
    return found


def redact(text: str) -> str:
    """``text`` with the values of secret environment variables and every recognisable password masked."""
    # Whole values first: masking a password inside a data URL first would leave the rest of the URL unmatched.
    for secret in sorted(secrets_in_environment(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern in _PASSWORDS:
        text = pattern.sub(lambda m: f"{m.group('head')}{MASK}{m.groupdict().get('at') or ''}", text)
    return text
