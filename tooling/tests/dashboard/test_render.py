"""The site as files: escaped pages, valid Plotly figures, one vendored bundle, relative links, safe rebuilds."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import plotly.graph_objects as go
import pytest

from modelctl.dashboard import build, charts
from modelctl.dashboard.collect import collect
from modelctl.dashboard.model import RetrainRun
from modelctl.dashboard.render import MARKER
from modelctl.errors import UsageError
from tests.dashboard.conftest import Scenario


class Links(HTMLParser):
    """Every href/src of a page, every inline script's text, and the text of the description paragraph."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[str] = []
        self.in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value is not None:
                self.links.append(value)
        self.in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self.in_script = False

    def handle_data(self, data: str) -> None:
        if self.in_script:
            self.scripts.append(data)


def parsed(page: Path) -> Links:
    links = Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


@pytest.fixture(scope="module")
def site(scenario: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    build(scenario.repo, out, state=scenario.state)
    return out


def test_a_description_with_markup_shows_as_text(site: Path) -> None:
    for page in (site / "index.html", site / "models" / "fraud_scorer.html", site / "attention.html"):
        html = page.read_text(encoding="utf-8")
        assert "<script>window.__pwned" not in html and "<b>bold</b>" not in html, page
        assert not any("__pwned" in script for script in parsed(page).scripts), page
    model = (site / "models" / "fraud_scorer.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;&lt;b&gt;bold&lt;/b&gt; &amp; &#34;quoted&#34;" in model


def test_every_link_is_relative_and_resolves_to_a_file(site: Path) -> None:
    pages = [site / "index.html", site / "attention.html", *sorted((site / "models").glob("*.html"))]
    assert len(pages) == 2 + 7
    checked = 0
    for page in pages:
        for link in parsed(page).links:
            if link == "data:,":  # the empty favicon: no request for /favicon.ico (a 404 in the console)
                continue
            assert not re.match(r"^[a-z]+:|^/", link) or link.startswith("https://github.com/"), (page, link)
            if link.startswith("https://"):
                continue
            assert (page.parent / link).resolve().is_file(), f"{page.name} links to missing {link}"
            checked += 1
    assert checked > 30


def test_plotly_is_vendored_once_and_never_loaded_from_a_network(site: Path) -> None:
    bundle = site / "assets" / "plotly.min.js"
    assert bundle.stat().st_size > 1_000_000 and b"plotly.js" in bundle.read_bytes()[:2000].lower()
    assert [p.name for p in site.rglob("plotly*.js")] == ["plotly.min.js"]
    for page in site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "cdn." not in text and "://cdn" not in text, page


def test_every_figure_is_valid_for_plotly(scenario: Scenario) -> None:
    site = collect(scenario.repo, scenario.state)
    drawn = {view.name: charts.for_model(view, site.environments) for view in site.models}
    for figures in drawn.values():
        for chart in figures:
            go.Figure(data=chart.data, layout=chart.layout)  # raises on any property Plotly does not know
    iris = {chart.id: chart.points for chart in drawn["iris_classifier"]}
    assert iris == scenario.gate_points
    assert drawn["fraud_scorer"] == []


def test_chart_text_from_the_store_is_plain_text_for_plotly() -> None:
    hostile = RetrainRun(at="2026-11-06T10:00:00+00:00", decision='<a href="javascript:alert(1)">x</a>',
                         metric="accuracy<br>", challenger=0.9, champion=0.8)  # fmt: skip
    chart = charts.retrain([hostile])
    assert chart is not None and chart.data[0]["text"][0] == '&lt;a href="javascript:alert(1)"&gt;x&lt;/a&gt;'
    assert chart.layout["yaxis"]["title"]["text"] == "accuracy&lt;br&gt;"
    assert chart.data[0]["x"][0] == "2026-11-06 10:00:00", "UTC without an offset: Plotly drops dates with one"


def test_a_chart_spec_cannot_close_its_script_element(site: Path) -> None:
    page = (site / "models" / "iris_classifier.html").read_text(encoding="utf-8")
    specs = re.findall(r'<script type="application/json" class="chart-spec"[^>]*>(.*?)</script>', page, re.S)
    assert len(specs) == 4
    for spec in specs:
        assert "<" not in spec
        assert json.loads(spec)["data"]


def test_a_rebuild_replaces_its_own_pages_and_refuses_other_folders(scenario: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "site"
    build(scenario.repo, out, state=scenario.state)
    stale = out / "models" / "removed_long_ago.html"
    stale.write_text("old")
    # Anything added beside the pages would be published with them: a rebuild leaves only its own site (a custom
    # domain for GitHub Pages is a repository setting, not a file in the artifact).
    (out / "CNAME").write_text("dashboard.example.com\n")
    build(scenario.repo, out, state=scenario.state)
    assert not stale.exists() and not (out / "CNAME").exists() and (out / MARKER).is_file()

    other = tmp_path / "home"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match=r"home is not empty and holds no earlier site"):
        build(scenario.repo, other, state=scenario.state)
    assert (other / "notes.txt").read_text() == "mine"


def test_the_overview_says_what_is_live_where(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    row = re.search(r'<tr data-attention="0" data-model="iris_classifier">(.*?)</tr>', html, re.S)
    assert row is not None
    cells = re.sub(r"<[^>]+>", " ", row.group(1))
    text = " ".join(cells.split())
    assert "v3 iris_classifier:ccc" in text and "v2 iris_classifier:ccc" in text
    assert "P90 110 ms · errors 0.10% · 90.0 req/s" in text and "by alice@laptop" in text
    never = re.search(r'<tr data-attention="1" data-model="fraud_scorer">(.*?)</tr>', html, re.S)
    assert never is not None and "not deployed" in never.group(1) and "never deployed" in never.group(1)
    attention = (site / "attention.html").read_text(encoding="utf-8")
    assert attention.count('<tr data-model="') == 6  # all but iris_classifier
