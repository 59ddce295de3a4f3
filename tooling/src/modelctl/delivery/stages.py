"""Named, timed stages of a run, printed as they go and summarised as a table (terminal and markdown).

A stage's detail is masked (``redact``) when it is set, however it is set: it is often an error's first line
(a training query that failed names its data URL, password included), and the table, the step summary, the
notification and CI's one-line result all show it (issue 20 item 11).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from rich.table import Table

from modelctl.console import err
from modelctl.redact import redact


@dataclass
class Stage:
    name: str
    status: str = "pending"
    seconds: float = 0.0
    detail: str = ""

    def __setattr__(self, name: str, value: object) -> None:
        # Every writer (the stage's own code, StageLog.record, a failure) goes through here.
        if name == "detail" and isinstance(value, str):
            value = redact(value)
        super().__setattr__(name, value)


@dataclass
class StageLog:
    title: str
    planned: list[str] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.stages = [Stage(name) for name in self.planned]

    def _get(self, name: str) -> Stage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        stage = Stage(name)
        self.stages.append(stage)
        return stage

    @contextmanager
    def stage(self, name: str) -> Iterator[Stage]:
        """Time the block; "ok" when it ends, "FAILED" (and every later planned stage "not run") when it raises."""
        stage = self._get(name)
        number = self.stages.index(stage) + 1
        err.print(f"[{number}/{len(self.stages)}] {name} ...", markup=False)
        started = time.monotonic()
        try:
            yield stage
        except BaseException as exc:
            stage.status = "FAILED"
            # The whole text is masked before its first line is taken: a secret may span lines.
            stage.detail = stage.detail or (redact(str(exc)).splitlines() or [type(exc).__name__])[0]
            stage.seconds = time.monotonic() - started
            for later in self.stages[number:]:
                if later.status == "pending":
                    later.status = "not run"
            raise
        stage.status = "ok" if stage.status == "pending" else stage.status
        stage.seconds = time.monotonic() - started
        err.print(f"      {stage.status} in {stage.seconds:.1f}s: {stage.detail}", markup=False)

    def record(self, name: str, seconds: float, detail: str, status: str = "ok") -> None:
        """A stage that ran elsewhere (e.g. in parallel), added with its own timing."""
        stage = self._get(name)
        stage.status, stage.seconds, stage.detail = status, seconds, detail

    @property
    def failed(self) -> Stage | None:
        return next((s for s in self.stages if s.status == "FAILED"), None)

    def total(self) -> float:
        return sum(s.seconds for s in self.stages)

    def table(self) -> Table:
        table = Table(title=self.title)
        for column in ("stage", "status", "seconds", "detail"):
            table.add_column(column, overflow="fold")
        for stage in self.stages:
            table.add_row(stage.name, stage.status, f"{stage.seconds:.1f}", stage.detail)
        table.add_row("total", "", f"{self.total():.1f}", "")
        return table

    def markdown(self) -> str:
        rows = "".join(f"| {s.name} | {s.status} | {s.seconds:.1f} | {s.detail} |\n" for s in self.stages)
        return "\n| stage | status | seconds | detail |\n| --- | --- | --- | --- |\n" + rows
