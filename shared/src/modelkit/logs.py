"""One logging setup for training scripts and tooling: timestamps, level, logger name."""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int | None = None) -> logging.Logger:
    """Configure the root logger once; ``MODEL_LOG_LEVEL`` overrides the default INFO."""
    chosen = level if level is not None else os.environ.get("MODEL_LOG_LEVEL", "INFO")
    logging.basicConfig(level=chosen, format=FORMAT, force=False)
    return logging.getLogger()
