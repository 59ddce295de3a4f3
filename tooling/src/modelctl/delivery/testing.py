"""The model's own test suite, run in its own environment (what `tox -e model-<name>` runs)."""

from __future__ import annotations

from collections.abc import Callable

from modelctl.errors import ModelctlError
from modelctl.model import Model


class TestsFailedError(ModelctlError):
    pass


def run_tests(model: Model, on_start: Callable[[int], None] | None = None) -> str:
    """pytest in the model folder; the summary line ("12 passed in 9.1s"), TestsFailedError when any failed.
    ``on_start`` gets pytest's pid (the pipeline stops it when the run fails elsewhere)."""
    argv = ["-m", "pytest", "-q", "-p", "no:cacheprovider"]
    result = model.run(argv, what=f"the tests of {model.name}", check=False, on_start=on_start)
    summary = next(
        (line.strip("= ") for line in reversed(result.stdout.splitlines()) if " passed" in line or " failed" in line),
        "",
    )
    if result.returncode != 0:
        raise TestsFailedError(f"the tests of {model.name} failed: {summary or result.output[-500:]}")
    return summary
