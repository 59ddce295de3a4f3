"""Argument types that refuse out-of-range values at parse time (exit 2, with the range in the message)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def int_in(low: int, high: int, what: str = "a number") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}..{high}")
        return value

    return parse


PORT = int_in(1024, 65535, "a port")
SECONDS = int_in(1, 3600, "a number of seconds")
