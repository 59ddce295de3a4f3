"""bench/serving_inputs.py runs (a smoke run): text and image models baked, served both ways, loaded, tabled.

Timing is the bench's to print, never a verdict here: only that both sides do the same work and answer every request.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_serving_inputs_quick_run() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "serving_inputs.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, f"exit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr[-3000:]}"
    for kind in ("text", "image"):
        assert f"{kind:5} same predictions for the sample, both refuse a request over the limit" in run.stdout
        for server in ("bentoml", "fastapi"):
            row = re.search(rf"^\| {kind} \| {server} \|.*\| (\d+)/(\d+) \|$", run.stdout, re.M)
            assert row, f"no {kind}/{server} row in:\n{run.stdout}"
            failures, requests = int(row.group(1)), int(row.group(2))
            assert failures == 0 and requests > 0, row.group(0)
