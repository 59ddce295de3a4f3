"""Lists of model names as people and workflows write them on a command line."""

from __future__ import annotations

import json

from modelctl.errors import UsageError


def parse_list(text: str | None) -> list[str] | None:
    """`a,b` or `a b` or a JSON list (`["a", "b"]`, as the workflows pass outputs); None stays None."""
    if text is None:
        return None
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parsed = json.loads(stripped)
        except ValueError as exc:
            raise UsageError(f"{text!r} is not a JSON list: {exc}") from exc
        if not isinstance(parsed, list) or not all(isinstance(m, str) for m in parsed):
            raise UsageError(f"{text!r} must be a JSON list of model names")
        return [m.strip() for m in parsed if m.strip()]
    return [m for m in stripped.replace(",", " ").split() if m]
