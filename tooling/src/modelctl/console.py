"""Where modelctl writes: results to stdout, notices and progress to stderr."""

from __future__ import annotations

import sys

from rich.console import Console

# Tables stay readable when piped (CI logs): rich would otherwise wrap them at 80 columns.
_WIDTH = None if sys.stdout.isatty() else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True, width=_WIDTH)
