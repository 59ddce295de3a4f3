"""The load-test gate: Locust against a served model, its aggregated stats judged against
`loadtest.max_p90_ms` and `loadtest.max_error_rate`. The one place a load test passes or fails.

The load comes from the platform's own Locust user and the stats from its own listener, in a process that imports
no code of the model's: the model supplies data only (its payload, its schema's bounds as checked JSON). Its own
locustfile still runs for exploratory load tests, which never record a pass (issue #20, item 3)."""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from modelctl import cmd, platformenv, procs
from modelctl.console import err
from modelctl.delivery.train import store_env
from modelctl.envs import runtime_script
from modelctl.errors import GateRefusedError, ModelctlError, UsageError
from modelctl.model import Model
from modelctl.processenv import model_process_env, pycache_of
from modelctl.repo import SHARED_DIR
from modelkit import ModelConfig
from modelkit.samples import numeric_bounds

LOCUST_GRACE_S = 120  # on top of the test's duration: start-up, spawning, stop timeout
#: `locust_user` of a gate run: the platform's own user (runtime/locust_gate.py), in a process that imports nothing
#: of the model's folder. Any other value (the model's locustfile: an exploratory run) is never a pass.
PLATFORM_USER = "platform"


class GateBreachedError(GateRefusedError):
    pass


@dataclass(frozen=True)
class Verdict:
    passed: bool
    requests: int
    failures: int
    error_rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    rps: float
    max_p90_ms: float
    max_error_rate: float
    breaches: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_summary(path: Path) -> dict[str, Any]:
    """The final aggregated stats written by the runtime/locust_summary.py plugin."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelctlError(f"{path} is missing: Locust did not finish (see locust.log beside it)") from None
    except (OSError, ValueError) as exc:
        raise ModelctlError(f"cannot read Locust's summary {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelctlError(f"{path} is not a JSON object")
    return data


def evaluate(stats: dict[str, Any], config: ModelConfig) -> Verdict:
    limits = config.loadtest
    requests = int(stats.get("requests") or 0)
    failures = int(stats.get("failures") or 0)
    error_rate = failures / requests if requests else 1.0
    p90 = float(stats.get("p90_ms") or 0.0)
    breaches = []
    if requests == 0:
        breaches.append("no request completed (is the server up?)")
    if p90 > limits.max_p90_ms:
        breaches.append(f"P90 latency {p90:.0f} ms exceeds loadtest.max_p90_ms {limits.max_p90_ms:.0f} ms")
    if error_rate > limits.max_error_rate:
        measured = f"error rate {error_rate:.2%} ({failures}/{requests})"
        breaches.append(f"{measured} exceeds loadtest.max_error_rate {limits.max_error_rate:.2%}")
    return Verdict(
        passed=not breaches,
        requests=requests,
        failures=failures,
        error_rate=round(error_rate, 6),
        p50_ms=float(stats.get("p50_ms") or 0.0),
        p90_ms=p90,
        p99_ms=float(stats.get("p99_ms") or 0.0),
        rps=round(float(stats.get("rps") or 0.0), 2),
        max_p90_ms=limits.max_p90_ms,
        max_error_rate=limits.max_error_rate,
        breaches=breaches,
    )


def markdown(model: str, bento: str, verdict: Verdict, report_dir: Path, exploratory: str | None = None) -> str:
    """The summary; ``exploratory``: the model's own Locust file such a run used (never a gate verdict)."""
    status = "PASS" if verdict.passed else "FAIL"
    kind = "Exploratory load test" if exploratory else "Load test"
    lines = [f"### {kind} {status}: `{model}` (`{bento}`)", ""]
    if exploratory:
        lines += [f"Load and numbers from `{exploratory}`: not a gate verdict, never recorded as a pass.", ""]
    lines += [
        "| metric | measured | limit |",
        "| --- | --- | --- |",
        f"| P90 latency | {verdict.p90_ms:.0f} ms | {verdict.max_p90_ms:.0f} ms |",
        f"| error rate | {verdict.error_rate:.2%} ({verdict.failures}/{verdict.requests})"
        f" | {verdict.max_error_rate:.2%} |",
        f"| P50 / P99 | {verdict.p50_ms:.0f} / {verdict.p99_ms:.0f} ms | |",
        f"| throughput | {verdict.rps:.1f} req/s | |",
        "",
        f"Report: `{report_dir / 'report.html'}`",
    ]
    lines += [f"- {b}" for b in verdict.breaches]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class GateResult:
    verdict: Verdict
    report_dir: Path
    label: str  # the bento or URL that was tested
    summary: dict[str, Any]
    #: The model's own Locust file of an exploratory run (its numbers are the model's to write), or None: the
    #: gate's own user, in a process that imports nothing of the model's.
    locustfile: str | None = None


def request_bounds(model: Model) -> dict[str, dict[str, Any]]:
    """The numeric bounds of the model's request row, as plain JSON: read from ``api_schema.Features`` by a
    process of its own in the model's environment, checked here (`bounds_of`)."""
    where = model.relative("api_schema.py")
    result = model.run([runtime_script("request_schema.py")], what=f"reading {where}", timeout=120, check=False)
    line = result.last_json_line()
    if result.returncode != 0 or not line:
        raise ModelctlError(
            f"cannot read the request schema in {where} for the load test (exit {result.returncode}); make "
            f"`import api_schema` work in models/{model.name}/:\n{cmd.tail_of(result.output, 8)}"
        )
    return bounds_of(line, where)


def bounds_of(line: str, where: str) -> dict[str, dict[str, Any]]:
    """Bounds per numeric field (``integer``, ``minimum``/``maximum`` or null, ``exclusive``) from the line
    runtime/request_schema.py printed; empty when the model has no request schema (its sample's values are then
    sent as they are). Anything else is refused: this is data from the model's code."""
    try:
        answer = json.loads(line)
        schema = answer["schema"]
        if schema is None:
            err.print(f"no numeric bounds for the load test ({answer.get('reason')}): sample values sent as they are")
            return {}
        if not isinstance(schema, dict) or not isinstance(schema.get("properties", {}), dict):
            raise TypeError("not a JSON schema object")
        bounds = numeric_bounds(schema)
        if any(math.isnan(v) for b in bounds.values() for v in (b.minimum, b.maximum)):
            raise ValueError("a bound is NaN")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ModelctlError(
            f"{where}: Features.model_json_schema() is not a usable request schema for the load test ({exc}); "
            "fix Features (a pydantic model of one row)"
        ) from exc
    return {
        name: {
            "integer": b.integer,
            "minimum": None if math.isinf(b.minimum) else b.minimum,
            "maximum": None if math.isinf(b.maximum) else b.maximum,
            "exclusive": b.exclusive,
        }
        for name, b in bounds.items()
    }


def write_payload(model: Model, path: Path) -> Path:
    """The gate's requests as data (rows of ``loadtest.payload`` and the schema's bounds) for `locust_gate.py`."""
    rows = model.sample()["instances"]
    if not all(isinstance(row, dict) for row in rows):
        raise UsageError(f"{model.relative(model.config.loadtest.payload)}: every instance must be a JSON object")
    path.write_text(json.dumps({"rows": rows, "bounds": request_bounds(model)}) + "\n", encoding="utf-8")
    return path


def locust_options(model: Model, url: str, reports: Path, seconds: int) -> list[str]:
    settings = model.config.loadtest
    return [
        "--host",
        url,
        "--headless",
        "-u",
        str(settings.users),
        "-r",
        str(settings.spawn_rate),
        "-t",
        f"{seconds}s",
        "--csv",
        str(reports / "locust"),
        "--html",
        str(reports / "report.html"),
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--stop-timeout",
        "5",
    ]


def _run_gate_locust(model: Model, url: str, reports: Path, seconds: int, stats: Path) -> cmd.Completed:
    """Locust with the gate's own user and summary, and nothing of the model's: isolated mode (no PYTHON*
    variables, no script or current folder on sys.path), an empty current folder and home (Locust adds the
    current folder to sys.path and reads locust.conf and pyproject.toml there, and ~/.locust.conf). The summary
    is written there too, not at a path known in advance, and copied to ``stats`` once Locust has exited."""
    payload = write_payload(model, reports / "loadtest_payload.json")
    # The platform's own Locust environment: a package of the model's (a .pth file runs at every start-up of its
    # interpreter) cannot reach the process whose numbers the verdict is made of (issue 20 items 3 and 4).
    from modelctl.state import State

    python = platformenv.python(State.of(model.repo).root, platformenv.locust(model.repo.root / SHARED_DIR))
    scripts = f"{runtime_script('locust_gate.py')},{runtime_script('locust_summary.py')}"
    with tempfile.TemporaryDirectory(prefix="modelctl-gate-") as empty:
        private = Path(empty) / "locust_summary.json"
        extra = {"HOME": empty, "MODELCTL_LOCUST_SUMMARY": str(private), "MODELCTL_LOADTEST_PAYLOAD": str(payload)}
        isolated = [str(python), "-I", "-X", f"pycache_prefix={pycache_of(python)}", "-m", "locust", "-f", scripts]
        result = cmd.run(
            isolated + locust_options(model, url, reports, seconds),
            what=f"locust against {url}",
            cwd=Path(empty),
            env=model_process_env(extra, python=python),
            timeout=seconds + LOCUST_GRACE_S,
            check=False,
        )
        if private.is_file():
            shutil.copyfile(private, stats)
        return result


def _run_model_locust(
    model: Model, locustfile: str, url: str, reports: Path, seconds: int, stats: Path
) -> cmd.Completed:
    """Locust with the model's own file, from its folder (exploratory: its listeners can rewrite the numbers)."""
    return model.run(
        ["-m", "locust", "-f", f"{locustfile},{runtime_script('locust_summary.py')}"]
        + locust_options(model, url, reports, seconds),
        what=f"locust ({model.relative(locustfile)}) against {url}",
        env={**store_env(model), "MODELCTL_LOCUST_SUMMARY": str(stats)},
        timeout=seconds + LOCUST_GRACE_S,
        check=False,
    )


def model_locustfile(model: Model, locustfile: str) -> str:
    """``locustfile`` as a path relative to the model folder, which must hold it."""
    path = (model.folder / locustfile).resolve()
    if not path.is_relative_to(model.folder.resolve()) or not path.is_file():
        raise UsageError(f"{model.relative(locustfile)} is not a file in the model folder: --locustfile takes one")
    return str(path.relative_to(model.folder.resolve()))


def load_test(
    model: Model,
    url: str,
    reports: Path,
    label: str,
    duration: int | None = None,
    server_pid: int | None = None,
    locustfile: str | None = None,
) -> GateResult:
    """Locust against ``url`` with the config's users, spawn rate and duration; the verdict and the reports.

    The gate's own Locust user generates the load from the model's payload (data only), unless ``locustfile``
    (a file of the model folder) asks for an exploratory run, which can never be recorded as a pass.
    ``server_pid``: the server under test, when this process started it (a server that dies fails the gate).
    """
    settings = model.config.loadtest
    seconds = duration or settings.duration_s
    if locustfile is not None:
        locustfile = model_locustfile(model, locustfile)
    user = PLATFORM_USER if locustfile is None else model.relative(locustfile)
    err.print(
        f"locust ({user}): {settings.users} users, spawn {settings.spawn_rate}/s, {seconds}s against {url}",
        markup=False,
    )
    started = time.monotonic()
    stats = reports / "locust_summary.json"
    try:
        if locustfile is None:
            result = _run_gate_locust(model, url, reports, seconds, stats)
        else:
            result = _run_model_locust(model, locustfile, url, reports, seconds, stats)
    except cmd.CommandError as exc:
        raise ModelctlError(f"{exc}; reports: {reports}") from exc
    (reports / "locust.log").write_text(result.output + "\n", encoding="utf-8")
    if not stats.exists():
        raise ModelctlError(
            f"locust wrote no stats (exit {result.returncode}):\n{procs.log_tail(reports / 'locust.log')}"
        )
    verdict = evaluate(read_summary(stats), model.config)
    if server_pid is not None and not procs.alive(server_pid):
        verdict = replace(verdict, passed=False, breaches=["the server died during the load test", *verdict.breaches])
    summary = {
        "model": model.name,
        "bento": label,
        "url": url,
        "duration_s": round(time.monotonic() - started, 1),
        "users": settings.users,
        "locust_user": user,
        **verdict.as_dict(),
        "report_dir": str(reports),
    }
    (reports / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    text = markdown(model.name, label, verdict, reports, exploratory=None if locustfile is None else user)
    (reports / "summary.md").write_text(text, encoding="utf-8")
    return GateResult(verdict, reports, label, summary, locustfile)


def one_line(verdict: Verdict) -> str:
    return (
        f"P90 {verdict.p90_ms:.0f}/{verdict.max_p90_ms:.0f} ms, errors {verdict.error_rate:.2%}"
        f"/{verdict.max_error_rate:.2%}, {verdict.rps:.0f} req/s"
    )


def save_pass(model: Model, bento: str, result: GateResult) -> None:
    """Remember that ``bento`` passed the gate, in the state store (deploy and export refuse bentos without)."""
    from modelctl.state import State

    if result.locustfile is not None or result.summary.get("locust_user") != PLATFORM_USER:
        raise ModelctlError(f"a load test with {result.locustfile} is exploratory: it never records a gate pass")
    if not result.verdict.passed:
        raise ModelctlError(f"{bento} did not pass the load-test gate: nothing to record")
    State.of(model.repo).put_gate_result(bento, result.summary)


def _recorded(model: Model, bento: str) -> dict[str, Any] | None:
    from modelctl.state import State

    return State.of(model.repo).gate_result(bento)


def passed_summary(model: Model, bento: str) -> dict[str, Any] | None:
    """The load-test summary ``bento`` passed the gate with, or None when it never did."""
    summary = _recorded(model, bento)
    return summary if lacking(summary) is None else None


def not_passed(model: Model, bento: str) -> str | None:
    """None when ``bento`` passed the gate; else what it lacks, for a refusal."""
    return lacking(_recorded(model, bento))


def lacking(summary: dict[str, Any] | None) -> str | None:
    if summary is None or summary.get("passed") is not True:
        return "the load-test gate"
    if summary.get("locust_user") != PLATFORM_USER:
        return "the load-test gate (its recorded pass predates the gate's own Locust user)"
    return None
