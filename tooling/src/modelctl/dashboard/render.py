"""Write the site: Jinja2 pages (autoescaped), the small CSS/JS of this package and one vendored Plotly bundle.

Layout of ``DIR`` (every link relative, so it opens from ``file://``, a CI artifact or GitHub Pages)::

    index.html                 every model, filter and sort
    attention.html             the models that need attention, and why
    models/<model>.html        one page per model: environments, charts, ledger, retrains, drift
    reports/<model>/<run>/report.html   copies of the load-test reports found on this machine
    assets/                    dashboard.css, dashboard.js, charts.js, plotly.min.js
"""

from __future__ import annotations

import hashlib
import importlib
import re
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined

from modelctl.dashboard import charts
from modelctl.dashboard.model import ModelView, Site
from modelctl.errors import UsageError

MARKER = ".modelctl-dashboard"
UTC_STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(\+00:00|Z)")
SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,100}")
ASSETS = ("dashboard.css", "dashboard.js", "charts.js")
#: What a rebuild replaces in a folder that holds an earlier build (nothing else there is touched).


@dataclass(frozen=True)
class Built:
    out: Path
    models: int
    pages: int
    charts: int
    reports: int
    attention: int


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def rps(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} req/s"


def score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def when(value: str | None) -> str:
    """An ISO time as ``2026-12-02 10:00 UTC`` (anything else as it is)."""
    if not value:
        return "-"
    if UTC_STAMP.fullmatch(value):  # what modelctl writes: no parsing needed (thousands per site)
        return f"{value[:10]} {value[11:16]} UTC"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.utcoffset() == timedelta(0):
        return parsed.strftime("%Y-%m-%d %H:%M UTC")
    return parsed.isoformat(sep=" ", timespec="minutes")


def run_link(by: str | None) -> tuple[str, str] | None:
    """(text, URL) when ``by`` ends with a https link (a GitHub Actions run, see ``ledger.triggered_by``)."""
    if not by:
        return None
    text, _, url = by.rpartition(" ")
    if text and url.startswith("https://") and len(url) > len("https://"):
        return text, url
    return None


def health_class(text: str) -> str:
    return text if text in ("up", "down") else "other"


def page_href(view: ModelView) -> str:
    """``models/<name>.html``; a folder name that is not a plain file name gets a name derived from it."""
    name = view.name
    if not SAFE_NAME.fullmatch(name):
        name = "model-" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return f"models/{name}.html"


def ledger_rows(view: ModelView) -> list[tuple[str, ...]]:
    """The release ledger table of ``view``, newest first, as text cells (Jinja escapes them). Formatted here, not
    in the template: a site of 1,000 models has ~80,000 rows, and a tuple unpacked by the loop costs a fraction of
    a template's attribute lookups and filter calls per cell."""
    rows: list[tuple[str, ...]] = []
    for r in reversed(view.releases):
        link = run_link(r.by)
        gate = r.gate
        report = r.report
        rows.append(
            (
                r.outcome, r.env, r.label, r.outcome.replace("_", " "), r.bento or "-", when(r.at),
                link[0] if link else (r.by or "-"), link[1] if link else "",
                ms(gate.p90_ms) if gate else "-", pct(gate.error_rate) if gate else "-", rps(gate.rps) if gate else "-",
                (report.href or "") if report else "", report.name if report else "", r.reason or "",
            )
        )  # fmt: skip
    return rows


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("modelctl.dashboard", "templates"),
        autoescape=True,  # every value from a config, ledger or description is text, never markup
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        ms=ms, pct=pct, rps=rps, score=score, when=when, run_link=run_link, health_class=health_class,
        page_href=page_href,
    )  # fmt: skip
    return env


def prepare(out: Path) -> None:
    """Make ``out`` ready for a build: create it, or empty a folder an earlier build made (its marker says so). A
    folder with other content that no build of ours made is refused rather than mixed into (or deleted)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"{out} is a file: give a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UsageError(f"{out} is not empty and holds no earlier site ({MARKER} is missing): use an empty folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        # Everything in a folder of ours goes: a file someone added there would otherwise be published with the
        # site (GitHub Pages serves the whole folder). A symlink is removed, never followed.
        for path in out.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    except OSError as exc:
        raise UsageError(f"cannot prepare {out} for the site: {exc}") from exc
    (out / MARKER).write_text("built by modelctl dashboard; a rebuild replaces this folder's pages\n", encoding="utf-8")


def plotly_js() -> str:
    """The Plotly.js bundle that ships inside the plotly package (vendored into the site: no CDN, works offline)."""
    # Imported by name: plotly has no type information, and this is the one function of it the build calls.
    offline = importlib.import_module("plotly.offline")
    return str(offline.get_plotlyjs())


def write_assets(out: Path) -> None:
    assets = out / "assets"
    assets.mkdir()
    package = resources.files("modelctl.dashboard") / "static"
    for name in ASSETS:
        (assets / name).write_bytes((package / name).read_bytes())
    (assets / "plotly.min.js").write_text(plotly_js(), encoding="utf-8")


def copy_reports(site: Site, out: Path) -> int:
    copied = 0
    for view in site.models:
        for release in view.releases:
            report = release.report
            if report is None or report.href is None or report.source is None:
                continue
            target = out / report.href
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(report.source, target)
                copied += 1
    return copied


def render(site: Site, out: Path) -> Built:
    """Write the whole site for ``site`` into ``out``."""
    prepare(out)
    write_assets(out)
    reports = copy_reports(site, out)
    env = environment()
    attention = [view for view in site.models if view.attention]
    common = {"site": site, "attention_count": len(attention)}
    (out / "index.html").write_text(
        env.get_template("overview.html").render(common, root="", page="overview"), encoding="utf-8"
    )
    (out / "attention.html").write_text(
        env.get_template("attention.html").render(common, root="", page="attention", attention=attention),
        encoding="utf-8",
    )
    (out / "models").mkdir()
    page = env.get_template("model.html")
    drawn = 0
    for view in site.models:
        figures = charts.for_model(view, site.environments)
        drawn += len(figures)
        html = page.render(common, root="../", page="model", view=view, charts=figures, rows=ledger_rows(view))
        (out / page_href(view)).write_text(html, encoding="utf-8")
    return Built(out, len(site.models), 2 + len(site.models), drawn, reports, len(attention))
