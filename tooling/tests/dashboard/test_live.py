"""The issue's "done when": a model deployed for real (trained, built, fuzzed, gated, served) shows up live in
staging on the dashboard, healthy, with its gate numbers and its load-test report, beside a model never deployed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from modelctl.dashboard import build
from modelctl.dashboard.collect import collect
from modelctl.delivery import release
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL

pytestmark = pytest.mark.slow


def test_the_example_live_in_staging_with_its_gate_and_report(
    delivery: Repo, gated: tuple[str, str], tmp_path: Path
) -> None:
    record = release.deploy(delivery.model(MODEL), "staging", gated[1])
    try:
        site = collect(delivery, State.of(delivery))
        (view,) = site.models
        staging = view.envs[0]
        assert staging.env == "staging" and staging.health == "up"
        assert (
            staging.live is not None and staging.live.bento == gated[1] and staging.live.label == f"v{record.version}"
        )
        assert staging.gate is not None and staging.gate.p90_ms == record.loadtest["p90_ms"]
        built = build(delivery, tmp_path / "site")
        assert built.reports >= 1
        overview = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
        row = re.search(rf'data-model="{MODEL}">(.*?)</tr>', overview, re.S)
        assert row is not None and gated[1] in row.group(1) and "health-up" in row.group(1)
        assert f"P90 {record.loadtest['p90_ms']:,.0f} ms" in row.group(1)
        page = (tmp_path / "site" / "models" / f"{MODEL}.html").read_text(encoding="utf-8")
        href = re.search(r'<a href="\.\./(reports/[^"]+/report\.html)">load test</a>', page)
        assert href is not None and (tmp_path / "site" / href.group(1)).is_file()
    finally:
        assert main(["undeploy", MODEL, "--env", "staging"]) == 0
