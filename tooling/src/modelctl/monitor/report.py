"""A monitor run for people: the terminal table, the markdown summary and the HTML report with plots."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl.monitor.result import Result

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    from rich.table import Table

PLOT_POINTS = 20_000  # live values drawn per numeric column (a uniform sample beyond it)
MAX_PLOTS = 40
BLUE, RED = "#1f77b4", "#d62728"


def _number(value: float | None, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:.2e}" if value and abs(value) < 10**-digits else f"{value:.{digits}f}"


def table(result: Result) -> Table:
    from rich.table import Table

    view = Table(title=f"{result.model} in {result.env}: {result.verdict}")
    for column in ("column", "role", "test", "statistic", "p-value", "drifted?"):
        view.add_column(column)
    for c in result.columns:
        view.add_row(
            c.label, c.role, c.test, _number(c.statistic), _number(c.p_value), "DRIFTED" if c.drifted else "no"
        )
    return view


def markdown(result: Result, html_path: Path | None = None) -> str:
    lines = [f"### monitor {result.model} in {result.env}: {result.verdict}", "", f"- {result.rows_line()}"]
    if result.enough:
        features = [c for c in result.columns if c.role == "feature"]
        lines.append(
            f"- drifted features: {sum(c.drifted for c in features)} of {len(features)} "
            f"({result.share_drifted:.0%}); predictions drifted: "
            f"{'yes' if any(c.drifted for c in result.columns if c.role == 'prediction') else 'no'}"
        )
    if result.quality is not None:
        q = result.quality
        if math.isnan(q.live):
            lines.append(f"- quality: {q.rows} labelled rows, too few to judge {q.metric}")
        else:
            trained = _number(q.training) if q.training is not None else "unknown"
            state = "BREACHED" if q.breached else "within limits"
            lines.append(f"- quality: live {q.metric} {_number(q.live)} vs training {trained} ({q.rows} rows): {state}")
    if result.dropped:
        lines.append(f"- the services dropped {result.dropped} rows (buffer full or store down)")
    if result.synthetic:
        lines.append(f"- {result.synthetic} rows were the post-deploy watch's smoke load (the sample rows): left out")
    for version, rows in sorted(result.other_versions.items()):
        lines.append(f"- {rows} rows of {version} not judged (not the live version)")
    for problem in result.problems:
        lines.append(f"- skipped: {problem}")
    if html_path is not None:
        lines.append(f"- report: {html_path}")
    if result.columns:
        lines += ["", "| column | test | statistic | p-value | drifted |", "| --- | --- | --- | --- | --- |"]
        for c in result.columns:
            mark = "**yes**" if c.drifted else "no"
            lines.append(f"| {c.label} | {c.test} | {_number(c.statistic)} | {_number(c.p_value)} | {mark} |")
    return "\n".join(lines) + "\n"


def _sample(values: Any, limit: int = PLOT_POINTS) -> list[Any]:
    import numpy as np

    array = np.asarray(values)
    if len(array) > limit:
        array = np.random.default_rng(0).choice(array, size=limit, replace=False)
    return list(array.tolist())


def _shares(column: Any) -> dict[str, float]:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]

    values = pc.drop_null(column.cast(pa.string()))
    total = max(len(values), 1)
    return {str(i["values"]): int(i["counts"]) / total for i in pc.value_counts(values).to_pylist()}


def write_html(result: Result, reference: pa.Table, live: pa.Table, path: Path) -> Path:
    """One page: the verdict, the table, and per tested column the reference against the live distribution.

    plotly.js is inlined (no CDN): the file opens offline and as a CI artifact.
    """
    import plotly.graph_objects as go  # type: ignore[import-untyped, unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped, unused-ignore]
    from plotly.subplots import make_subplots  # type: ignore[import-untyped, unused-ignore]

    tested = result.columns[:MAX_PLOTS]
    figure = None
    if tested:
        figure = make_subplots(
            rows=len(tested),
            cols=1,
            subplot_titles=[
                f"{c.label}: {c.test} {_number(c.statistic)}{' DRIFTED' if c.drifted else ''}" for c in tested
            ],
        )
        for index, c in enumerate(tested, start=1):
            show = index == 1
            ref_col, live_col = reference.column(c.name), live.column(c.name)
            if c.test == "ks" or (c.test == "psi" and pa.types.is_floating(ref_col.type)):
                traces = tuple(
                    go.Histogram(
                        x=_sample(pc.drop_null(column).to_numpy(zero_copy_only=False)),
                        name=name,
                        histnorm="probability",
                        opacity=0.6,
                        marker_color=colour,
                        showlegend=show,
                        legendgroup=name,
                    )
                    for column, name, colour in ((ref_col, "reference", BLUE), (live_col, "live", RED))
                )
            else:
                shares = [_shares(ref_col), _shares(live_col)]
                cats = sorted(set(shares[0]) | set(shares[1]))
                traces = tuple(
                    go.Bar(
                        x=cats,
                        y=[share.get(k, 0.0) for k in cats],
                        name=name,
                        marker_color=colour,
                        showlegend=show,
                        legendgroup=name,
                    )
                    for share, name, colour in ((shares[0], "reference", BLUE), (shares[1], "live", RED))
                )
            for trace in traces:
                figure.add_trace(trace, row=index, col=1)
        figure.update_layout(barmode="overlay", height=280 * len(tested), margin={"t": 60})
    body = markdown(result)
    rows = "".join(
        f"<tr><td>{html.escape(c.label)}</td><td>{c.role}</td><td>{c.test}</td><td>{_number(c.statistic)}</td>"
        f"<td>{_number(c.p_value)}</td><td>{'<b>drifted</b>' if c.drifted else 'no'}</td></tr>"
        for c in result.columns
    )
    notes = "".join(f"<li>{html.escape(line[2:])}</li>" for line in body.splitlines() if line.startswith("- "))
    plots = figure.to_html(include_plotlyjs=True, full_html=False) if figure is not None else "<p>no column tested</p>"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>monitor {html.escape(result.model)} {html.escape(result.env)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 10px;border-bottom:1px solid #ddd}</style>"
        f"</head><body><h1>{html.escape(result.model)} in {html.escape(result.env)}: {html.escape(result.verdict)}</h1>"
        f"<ul>{notes}</ul><table><tr><th>column</th><th>role</th><th>test</th><th>statistic</th><th>p-value</th>"
        f"<th>drifted</th></tr>{rows}</table>{plots}</body></html>"
    )
    path.write_text(page, encoding="utf-8")
    return path
