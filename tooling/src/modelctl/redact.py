"""Passwords never leave modelctl: every URL's password (and known secret values) is masked in text we emit.

Used on every message, log line, ledger entry and notification that may carry an error from a data
source (a training query that failed prints its SQLAlchemy URL, password included).
"""

from __future__ import annotations

import os
import re

MASK = "***"
# scheme://user:password@host -> scheme://user:***@host (SQLAlchemy, S3, HTTP ... URLs)  # pragma: allowlist secret
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)(?P<password>[^\s@/]+)(?P<at>@)")
# Environment variables whose whole value is a secret wherever it appears.
_SECRET_NAMES = re.compile(r"(TOKEN|SECRET|PASSWORD|API_KEY|WEBHOOK|ACCESS_KEY)", re.IGNORECASE)
_MIN_SECRET = 8  # shorter values would mask ordinary words


def secrets_in_environment() -> set[str]:
    """Values to mask: secret variables' values, and the password of every URL-valued variable."""
    found = set()
    for name, value in os.environ.items():
        if len(value) >= _MIN_SECRET and _SECRET_NAMES.search(name):
            found.add(value)
        match = _URL_PASSWORD.search(value)
        if match and len(match.group("password")) >= 4:
            found.add(match.group("password"))
    return found


def redact(text: str) -> str:
    """``text`` with URL passwords and the values of secret environment variables masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('head')}{MASK}{m.group('at')}", text)
    for secret in sorted(secrets_in_environment(), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text
