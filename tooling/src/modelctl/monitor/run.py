"""One monitor run: read the window of the log, compare it with the live version's reference, judge quality,
write the reports and the record. The one function the command, the scheduled loop and the Airflow task call."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl import bentostore
from modelctl.console import err
from modelctl.delivery.reports import new_report_dir
from modelctl.ledger import Record
from modelctl.model import Model
from modelctl.monitor import drift, labels_query, logs, quality, reference, report, window
from modelctl.monitor.result import Result
from modelctl.notify import append_step_summary
from modelctl.state import State
from modelctl.statestore import Store
from modelkit.samples import read_sample

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]


@dataclass(frozen=True)
class Outcome:
    result: Result
    report_dir: Path | None
    html: Path | None
    markdown: str


def live_record(state: State, model: str, env: str) -> Record | None:
    record = state.ledger.live(model, env)
    return record if record is not None and record.model_tag else None


def monitor(
    model: Model,
    env: str,
    since: str | None = None,
    labels: Path | None = None,
    *,
    now: datetime | None = None,
    store: Store | None = None,
    on_problem: Callable[[str], None] | None = None,
) -> Outcome:
    """Monitor ``model`` in ``env`` over the window ``since`` (default ``monitor.window``)."""
    settings = model.config.monitor
    at = now or datetime.now(UTC)
    start = window.since(since or settings.window, at)
    state = State.of(model.repo)
    store = store if store is not None else state.store
    warn = on_problem or (lambda line: err.print(f"warning: {line}", markup=False))

    log = logs.read_window(store, model.name, env, start, at)
    for problem in log.problems:
        warn(problem)
    live = live_record(state, model.name, env)
    tag = live.model_tag if live is not None else logs.latest_version(log)
    if tag is not None:
        logs.only_version(log, tag)
    if env in settings.smoke.environments and log.table is not None:
        # The watch's smoke load is the model's sample rows: what it asks is not what users ask.
        try:
            rows = read_sample(model.folder, model.config.loadtest.payload)["instances"]
        except (OSError, ValueError) as exc:
            warn(f"the smoke load's rows are not left out: {exc}")
        else:
            logs.without_keys(log, quality.sample_keys(rows, log.table, dict(settings.sensitive)))
    result = Result(
        model=model.name,
        env=env,
        at=at,
        since=start,
        version=tag,
        rows=log.rows,
        min_rows=settings.min_rows,
        problems=list(log.problems),
        dropped=log.dropped,
        other_versions=log.other_versions,
        synthetic=log.synthetic,
    )
    html_path = None
    report_dir = None
    if result.enough and tag is not None and log.table is not None:

        def stored() -> bytes | None:
            if live is None or not live.bento or live.model_tag != tag:
                return None
            return reference.from_bento(state, live.bento, live.sha256, tag)

        ref = reference.load(state.bentoml_home, tag, stored)
        result.columns, result.skipped = drift.compare(ref, log.table, settings)
        result.share_drifted = drift.share_drifted(result.columns)
        result.drifted = drift.verdict(result.columns, settings)
        sensitive = dict(settings.sensitive)
        if labels is not None:
            keyed = quality.keyed_labels(quality.read_labels(labels), log.table, sensitive, labels)
        else:
            keyed = quality.stored_labels(store, model.name, env, log.table, sensitive, warn)
            keyed.update(queried_labels(model, log.table, sensitive, (start, at), result.problems, warn))
        if labels is not None or keyed:
            # the metrics recorded with the version: its model.yaml here, else what the ledger kept when it shipped
            trained = bentostore.model_metrics(model.repo, tag) or (dict(live.metrics) if live is not None else {})
            result.quality = quality.judge(model.config, log.table, keyed, trained)
            if result.quality is not None and result.quality.note not in ("", "too few labelled rows"):
                result.problems.append(f"labels: {result.quality.note}")
                warn(result.problems[-1])
        report_dir = new_report_dir(model)
        html_path = report.write_html(result, ref, log.table, report_dir / f"monitor-{env}.html")
    text = report.markdown(result, html_path)
    if report_dir is not None:
        (report_dir / f"monitor-{env}.md").write_text(text, encoding="utf-8")
    store.write(result.record_key(), _json(result))
    append_step_summary(text)
    return Outcome(result, report_dir, html_path, text)


def queried_labels(
    model: Model,
    log: pa.Table,
    sensitive: Mapping[str, str],
    span: tuple[datetime, datetime],
    problems: list[str],
    warn: Callable[[str], None],
) -> dict[str, Any]:
    """The labels ``queries/labels.sql`` returns for the window, keyed; {} without the query. A query that cannot
    run is a problem of the run (named, in the record), not its end: drift is still judged."""
    query = model.folder / labels_query.QUERY
    if not query.is_file():
        return {}
    shown = model.relative(str(labels_query.QUERY))
    found = labels_query.labels_url(model.name)
    try:
        if found is None:
            raise quality.LabelsError(
                f"{shown}: not run, no labels URL ({', '.join(labels_query.url_variables(model.name))} unset)"
            )
        table = labels_query.run_query(found[1], query, *span)
        return quality.keyed_labels(table, log, sensitive, shown)
    except quality.LabelsError as exc:
        problems.append(str(exc).replace(str(query), shown))
        warn(problems[-1] + (f": {exc.detail}" if exc.detail else ""))
        return {}


def _json(result: Result) -> bytes:
    import json

    return (json.dumps(result.record(), indent=2, sort_keys=True) + "\n").encode()
