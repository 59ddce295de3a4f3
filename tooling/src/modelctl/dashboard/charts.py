"""Plotly figures of one model, as the JSON Plotly.js draws (``data`` + ``layout``), without a network.

The figures are written as plain dicts, not built with ``plotly.graph_objects``: validating a Figure object costs
milliseconds, which at 1,000 models with four charts each would be most of the build (issue 23 asks < 10 s). The
tests check every figure against plotly's own schema, so the dicts stay what Plotly accepts. Scatter traces
render as SVG (one ``path.point`` per data point), which is what the browser tests look for.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from modelctl.dashboard.model import DriftCheck, Gate, ModelView, Release, RetrainRun

# Plotly's default palette (plotly.colors.qualitative.Plotly), first colours: one per environment, in order.
COLOURS = ("#636EFA", "#EF553B", "#00CC96", "#AB63FA")
CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}


@dataclass(frozen=True)
class Chart:
    """One figure: the element id it is drawn into, what it shows and the Plotly spec."""

    id: str
    title: str
    data: list[dict[str, Any]]
    layout: dict[str, Any]
    config: dict[str, Any] = field(default_factory=lambda: dict(CONFIG))

    @property
    def points(self) -> int:
        return sum(len(trace["y"]) for trace in self.data)

    def spec(self) -> dict[str, Any]:
        return {"data": self.data, "layout": self.layout, "config": self.config}


def plain(text: str) -> str:
    """``text`` as Plotly shows it literally: Plotly reads a few HTML tags (links, line breaks) and entities in
    titles, names and hover text, and these come from configs, ledgers and retrain logs."""
    return html.escape(text, quote=False)


def plotly_time(at: str) -> str | None:
    """An ISO time as Plotly's date axis reads it (UTC, no offset: Plotly drops dates with one), or None."""
    try:
        parsed = datetime.fromisoformat(at)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.isoformat(sep=" ", timespec="seconds")


def _layout(title: str, x: str, y: str, x_type: str) -> dict[str, Any]:
    return {
        "title": {"text": plain(title)},
        "xaxis": {"title": {"text": x}, "type": x_type},
        "yaxis": {"title": {"text": plain(y)}, "rangemode": "tozero"},
        "height": 320,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"orientation": "h"},
        "hovermode": "closest",
    }


def _trace(name: str, x: list[Any], y: list[float], text: list[str], colour: str, **extra: Any) -> dict[str, Any]:
    """A line-and-markers trace; ``text`` (the hover text) must already be ``plain``."""
    return {
        "type": "scatter",
        "mode": "lines+markers",
        "name": plain(name),
        "x": x,
        "y": y,
        "text": text,
        "hovertemplate": "%{text}<br>%{y}<extra>" + plain(name) + "</extra>",
        "marker": {"color": colour, "size": 8},
        "line": {"color": colour},
        **extra,
    }


Series = dict[str, tuple[list[int], list[Gate], list[str]]]


def gated(releases: Sequence[Release], environments: Sequence[str]) -> Series:
    """Per environment, the deploys that carry gate numbers: (release numbers, gates, hover texts), in one pass
    shared by the P90 and throughput charts."""
    series: Series = {env: ([], [], []) for env in environments}
    for r in releases:
        if r.outcome == "deployed" and r.gate is not None and r.env in series:
            numbers, gates, text = series[r.env]
            numbers.append(r.number)
            gates.append(r.gate)
            text.append(plain(f"{r.env} {r.label} {r.bento or ''}"))
    return series


def _gate_chart(
    chart_id: str,
    title: str,
    axis: str,
    value: Callable[[Gate], float | None],
    series: Series,
    limit: float | None = None,
) -> Chart | None:
    data = []
    for index, (env, (numbers, gates, text)) in enumerate(series.items()):
        points = [(n, y, t) for n, g, t in zip(numbers, gates, text, strict=True) for y in [value(g)] if y is not None]
        if points:
            x, ys, hover = (list(column) for column in zip(*points, strict=True))
            data.append(_trace(env, x, ys, hover, COLOURS[index % len(COLOURS)]))
    if not data:
        return None
    layout = _layout(title, "release (numbered per environment)", axis, "linear")
    if max(max(t["x"]) for t in data) <= 20:
        layout["xaxis"]["dtick"] = 1  # whole release numbers only
    if limit is not None:
        layout["shapes"] = [
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": limit, "y1": limit,
             "line": {"color": "#888", "dash": "dash", "width": 1}}
        ]  # fmt: skip
        layout["annotations"] = [
            {"xref": "paper", "x": 1, "y": limit, "text": f"limit {limit:g}", "showarrow": False, "yanchor": "bottom"}
        ]
    return Chart(chart_id, title, data, layout)


def gate_p90(series: Series, limit: float | None = None) -> Chart | None:
    return _gate_chart("chart-p90", "Gate P90 latency per release", "P90 (ms)", lambda g: g.p90_ms, series, limit)


def gate_rps(series: Series) -> Chart | None:
    return _gate_chart("chart-rps", "Gate throughput per release", "requests/s", lambda g: g.rps, series)


def retrain(runs: Sequence[RetrainRun]) -> Chart | None:
    """Challenger vs champion on the same holdout, run by run."""
    scored = [r for r in runs if r.challenger is not None or r.champion is not None]
    if not scored:
        return None
    metric = scored[-1].metric or "metric"
    data = []
    sides: tuple[tuple[str, Callable[[RetrainRun], float | None]], ...] = (
        ("challenger", lambda r: r.challenger),
        ("champion", lambda r: r.champion),
    )
    for index, (name, pick) in enumerate(sides):
        points = [
            (t, pick(r), plain(r.decision)) for r in scored for t in [plotly_time(r.at)] if t and pick(r) is not None
        ]
        if points:
            x, y, text = (list(column) for column in zip(*points, strict=True))
            data.append(_trace(name, x, y, text, COLOURS[index]))
    if not data:
        return None
    layout = _layout(f"Retraining: challenger vs champion ({metric})", "run", metric, "date")
    layout["yaxis"]["rangemode"] = "normal"
    return Chart("chart-retrain", f"Retraining ({metric})", data, layout)


def drift(checks: Sequence[DriftCheck], environments: Sequence[str]) -> Chart | None:
    """Drift score over time per environment; drifted checks drawn as larger red-edged markers."""
    data = []
    for index, env in enumerate(environments):
        here = [c for c in checks if c.env == env and c.score is not None]
        points = [(t, c.score, c) for c in here for t in [plotly_time(c.at)] if t]
        if not points:
            continue
        colour = COLOURS[index % len(COLOURS)]
        text = [plain(f"{c.verdict}: {', '.join(c.features)}" if c.features else c.verdict) for _, _, c in points]
        trace = _trace(env, [p[0] for p in points], [float(p[1] or 0.0) for p in points], text, colour)
        trace["marker"] = {
            "color": colour,
            "size": [12 if c.drifted else 7 for _, _, c in points],
            "line": {"color": ["#d62728" if c.drifted else colour for _, _, c in points], "width": 2},
        }
        data.append(trace)
    if not data:
        return None
    return Chart("chart-drift", "Drift over time", data, _layout("Drift score over time", "check", "score", "date"))


def for_model(view: ModelView, environments: Sequence[str]) -> list[Chart]:
    """Every chart the model's page has data for, in page order."""
    series = gated(view.releases, environments)
    found = (gate_p90(series, view.identity.max_p90_ms), gate_rps(series), retrain(view.retrains),
             drift(view.drift, environments))  # fmt: skip
    return [chart for chart in found if chart is not None]
