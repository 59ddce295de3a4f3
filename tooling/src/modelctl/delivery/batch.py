"""Run one step for several models one after another (a CI shard): every model gets its own result,
a failure never stops the others, and the results are a table (terminal) and markdown (step summary)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.table import Table

from modelctl.console import err
from modelctl.errors import EXIT_OK, ModelctlError
from modelctl.model import Model
from modelctl.redact import redact


@dataclass
class ModelResult:
    model: str
    ok: bool
    seconds: float
    detail: str
    exit_code: int = EXIT_OK


def run_each(models: list[Model], step: Callable[[Model], str], label: str) -> list[ModelResult]:
    by_name = {model.name: model for model in models}
    return run_each_name(list(by_name), lambda name: step(by_name[name]), label)


def run_each_name(names: list[str], step: Callable[[str], str], label: str) -> list[ModelResult]:
    results = []
    for index, name in enumerate(names, start=1):
        err.print(f"=== [{index}/{len(names)}] {label} {name} ===", markup=False)
        started = time.monotonic()
        try:
            detail = step(name)
        except ModelctlError as exc:
            line = (redact(str(exc)).splitlines() or [type(exc).__name__])[0]
            results.append(ModelResult(name, False, time.monotonic() - started, line, exc.exit_code))
            err.print(f"{name}: FAILED: {line}", markup=False)
            continue
        results.append(ModelResult(name, True, time.monotonic() - started, detail))
    return results


def table(results: list[ModelResult], title: str) -> Table:
    view = Table(title=title)
    for column in ("model", "result", "seconds", "detail"):
        view.add_column(column, overflow="fold")
    for r in results:
        view.add_row(r.model, "ok" if r.ok else "FAILED", f"{r.seconds:.1f}", r.detail)
    return view


def markdown(results: list[ModelResult], title: str) -> str:
    rows = "".join(
        f"| {r.model} | {'ok' if r.ok else 'FAILED'} | {r.seconds:.1f} | {r.detail.replace('|', '/')} |\n"
        for r in results
    )
    return f"### {title}\n\n| model | result | seconds | detail |\n| --- | --- | --- | --- |\n{rows}"


def exit_code(results: list[ModelResult]) -> int:
    failed = [r for r in results if not r.ok]
    return max((r.exit_code for r in failed), default=EXIT_OK)
