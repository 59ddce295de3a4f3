"""Watch what went live (issue 13, "Beyond the anchors"): judge a new version from its own /metrics.

After a deploy, the live service's Prometheus metrics are sampled for ``deploy.watch.duration_s``. The
5xx rate and the P90 latency of the requests served *during the window* (counter and histogram-bucket
increases between the first and the latest sample) are compared with ``deploy.watch``'s limits. One
decision, :func:`judge`, serves every target: the local target scrapes the service's URL, Kubernetes
scrapes each pod through the API server, BentoCloud the deployment's endpoint; each only supplies a
*scraper* (a function returning the parsed series).

BentoML 1.4 metric names and labels (``bentoml/_internal/server/http/instruments.py``, namespace
``bentoml_service`` set in ``_bentoml_impl/server/app.py``): ``bentoml_service_request_total`` and the
histogram ``bentoml_service_request_duration_seconds``, both labelled ``endpoint``,
``http_response_code``, ``runner_name``, ``service_name``, ``service_version``. Probe endpoints are
counted too (only ``/metrics`` is skipped), so they are left out here: kubelet probes are not traffic.
"""

from __future__ import annotations

import math
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl.errors import ModelctlError

if TYPE_CHECKING:
    pass  # imported where used: most commands never talk HTTP

if TYPE_CHECKING:
    from modelkit import ModelConfig

REQUESTS = "bentoml_service_request_total"
DURATION = "bentoml_service_request_duration_seconds"
PROBES = ("/healthz", "/livez", "/readyz", "/metrics")
SOURCE = "__source__"  # label added by scrapers that merge several processes or pods
MAX_METRICS_BYTES = 16 << 20

# (metric name, sorted (label, value) pairs)
SeriesKey = tuple[str, tuple[tuple[str, str], ...]]
Series = dict[SeriesKey, float]
Scraper = Callable[[], Series]

_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?\s*$")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')
_UNESCAPE = re.compile(r"\\(.)")


class WatchError(ModelctlError):
    """The live service's metrics cannot be read: the watch cannot judge it."""


@dataclass(frozen=True)
class Limits:
    """``deploy.watch`` of a model's config, with ``max_p90_ms`` resolved (default: ``loadtest.max_p90_ms``)."""

    duration_s: float = 30.0
    interval_s: float = 5.0
    min_requests: int = 20
    max_5xx_rate: float = 0.01
    max_p90_ms: float = 500.0

    @classmethod
    def from_config(cls, config: ModelConfig) -> Limits:
        watch = config.deploy.watch
        return cls(
            duration_s=float(watch.duration_s),
            interval_s=float(watch.interval_s),
            min_requests=watch.min_requests,
            max_5xx_rate=watch.max_5xx_rate,
            max_p90_ms=watch.max_p90_ms if watch.max_p90_ms is not None else config.loadtest.max_p90_ms,
        )


@dataclass(frozen=True)
class Sample:
    at: float  # the watch clock's seconds
    series: Mapping[SeriesKey, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchVerdict:
    """``passed`` False means roll back. ``judged`` False: too little traffic (or no watch) to say."""

    passed: bool
    reasons: tuple[str, ...]
    requests: int = 0
    errors: int = 0  # 5xx responses
    error_rate: float = 0.0
    p90_ms: float | None = None
    judged: bool = True
    duration_s: float = 0.0
    samples: int = 0

    def summary(self) -> str:
        outcome = "passed" if self.passed else "FAILED"
        if not self.judged:
            outcome = "not judged"
        return f"watch {outcome}: " + "; ".join(self.reasons)


def parse_metrics(text: str, source: str = "", names: Iterable[str] = (REQUESTS, DURATION)) -> Series:
    """The samples of the metric families ``names`` in a Prometheus text exposition."""
    prefixes = tuple(names)
    series: Series = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or not line.startswith(prefixes):
            continue
        match = _LINE.match(line)
        if match is None:
            continue
        name, label_text, value_text = match.groups()
        labels = _labels(label_text or "")
        if labels is None:
            continue
        try:
            value = float(value_text)
        except ValueError:
            continue
        if source:
            labels[SOURCE] = source
        series[(name, tuple(sorted(labels.items())))] = value
    return series


def _labels(text: str) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    position = 0
    text = text.strip()
    while position < len(text):
        match = _LABEL.match(text, position)
        if match is None:
            return None
        labels[match.group(1)] = _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), match.group(2))
        position = match.end()
    return labels


def http_scraper(
    url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0, source: str = ""
) -> Scraper:
    """Reads ``<url>/metrics`` (one retry); WatchError when it cannot, naming the URL and the reason."""
    import httpx

    metrics_url = url.rstrip("/") + "/metrics"

    def scrape() -> Series:
        last: Exception | None = None
        for _attempt in range(2):
            try:
                with httpx.stream("GET", metrics_url, headers=dict(headers or {}), timeout=timeout) as response:
                    if response.status_code != 200:
                        hint = " (is serving.metrics off?)" if response.status_code == 404 else ""
                        raise WatchError(f"{metrics_url} answered HTTP {response.status_code}{hint}")
                    body = bytearray()
                    for chunk in response.iter_bytes():
                        body += chunk
                        if len(body) > MAX_METRICS_BYTES:
                            raise WatchError(f"{metrics_url} sent more than {MAX_METRICS_BYTES} bytes")
                return parse_metrics(body.decode("utf-8", "replace"), source)
            except httpx.HTTPError as exc:
                last = exc
        raise WatchError(f"cannot reach {metrics_url}: {type(last).__name__}: {last}")

    return scrape


@dataclass(frozen=True)
class SmokeLoad:
    """The watch's own requests: ``bodies`` POSTed round-robin to ``<url>/predict`` at ``rate_per_s``."""

    url: str
    bodies: tuple[dict[str, Any], ...]
    rate_per_s: float

    @classmethod
    def for_deploy(cls, config: ModelConfig, folder: Path, env: str, url: str | None) -> SmokeLoad | None:
        """The smoke load for a deploy of the model in ``folder`` to ``env`` at ``url``; None where the config sends
        none (production unless listed in ``monitor.smoke.environments``) or there is no HTTP URL to send to."""
        from modelkit.samples import RequestMaker, read_sample

        smoke = config.monitor.smoke
        if env not in smoke.environments or not url or not url.startswith(("http://", "https://")):
            return None
        rows = read_sample(folder, config.loadtest.payload)["instances"]
        maker = RequestMaker(rows, {}, max_rows=4)  # no bounds: the sample's own values, never refused
        rng = random.Random(0)
        return cls(url.rstrip("/"), tuple(maker.request(rng) for _ in range(32)), smoke.rate_per_s)


class SmokeSender:
    """Sends a :class:`SmokeLoad` from a thread until stopped; counts what it sent and what failed."""

    def __init__(self, load: SmokeLoad, timeout: float = 5.0) -> None:
        self.load = load
        self.timeout = timeout
        self.sent = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelctl-watch-smoke", daemon=True)

    def __enter__(self) -> SmokeSender:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self.timeout + 1)

    def _run(self) -> None:
        import httpx

        interval = 1.0 / self.load.rate_per_s
        started = time.monotonic()
        with httpx.Client(timeout=self.timeout) as client:
            while not self._stop.is_set():
                body = self.load.bodies[self.sent % len(self.load.bodies)]
                try:
                    response = client.post(f"{self.load.url}/predict", json=body)
                    self.failed += response.status_code >= 400
                except httpx.HTTPError:
                    self.failed += 1
                self.sent += 1
                self._stop.wait(max(0.0, started + self.sent * interval - time.monotonic()))


def _increase(before: Mapping[SeriesKey, float], after: Mapping[SeriesKey, float], name: str) -> Series:
    """Per-series increase of a counter between two samples (a counter that went down restarted from 0)."""
    result: Series = {}
    for key, value in after.items():
        if key[0] != name:
            continue
        previous = before.get(key, 0.0)
        result[key] = value - previous if value >= previous else value
    return result


def _selected(key: SeriesKey, version: str | None, endpoints: tuple[str, ...] | None) -> bool:
    labels = dict(key[1])
    endpoint = labels.get("endpoint", "")
    if endpoints is not None:
        if endpoint not in endpoints:
            return False
    elif endpoint in PROBES:
        return False
    return version is None or labels.get("service_version") == version


def p90_ms(buckets: Mapping[float, float]) -> float | None:
    """The 90th percentile in ms from cumulative bucket counts {upper bound s: count}, as Prometheus'
    ``histogram_quantile`` estimates it (linear inside the bucket; the largest finite bound for +Inf)."""
    ordered = sorted(buckets.items())
    if not ordered or ordered[-1][1] <= 0:
        return None
    running = 0.0
    monotone = []
    for bound, count in ordered:  # sums over series can dip after a reset: keep it cumulative
        running = max(running, count)
        monotone.append((bound, running))
    rank = 0.9 * monotone[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in monotone:
        if count >= rank:
            if math.isinf(bound):
                return lower * 1000
            if count == below:
                return bound * 1000
            return (lower + (bound - lower) * (rank - below) / (count - below)) * 1000
        lower, below = bound, count
    return lower * 1000


def judge(
    before: Sample,
    after: Sample,
    limits: Limits,
    *,
    version: str | None = None,
    endpoints: Iterable[str] | None = None,
) -> WatchVerdict:
    """The verdict on the requests served between two samples (the same decision for every target).

    ``version`` keeps only series of that bento version (a rolling update serves old and new pods);
    ``endpoints`` keeps only those routes (default: every endpoint but the probes and /metrics).
    """
    wanted = tuple(endpoints) if endpoints is not None else None
    elapsed = max(after.at - before.at, 0.0)
    by_code: dict[str, float] = {}
    for key, increase in _increase(before.series, after.series, REQUESTS).items():
        if _selected(key, version, wanted):
            code = dict(key[1]).get("http_response_code", "")
            by_code[code] = by_code.get(code, 0.0) + increase
    buckets: dict[float, float] = {}
    for key, increase in _increase(before.series, after.series, DURATION + "_bucket").items():
        if _selected(key, version, wanted):
            try:
                bound = float(dict(key[1])["le"])
            except (KeyError, ValueError):
                continue
            buckets[bound] = buckets.get(bound, 0.0) + increase
    requests = round(sum(by_code.values()))
    errors = round(sum(count for code, count in by_code.items() if code.startswith("5") and len(code) == 3))
    rate = errors / requests if requests else 0.0
    p90 = p90_ms(buckets)
    window = f"{requests} requests in {elapsed:.0f} s"
    if requests < max(limits.min_requests, 1):
        return WatchVerdict(
            passed=True,
            judged=False,
            reasons=(
                f"only {window} (deploy.watch.min_requests is {limits.min_requests}): 5xx rate and P90 not judged",
            ),
            requests=requests,
            errors=errors,
            error_rate=rate,
            p90_ms=p90,
            duration_s=elapsed,
        )
    breaches = []
    if rate > limits.max_5xx_rate:
        breaches.append(
            f"5xx rate {rate:.1%} ({errors} of {window}) is above deploy.watch.max_5xx_rate {limits.max_5xx_rate:.1%}"
        )
    if p90 is not None and p90 > limits.max_p90_ms:
        breaches.append(f"P90 {_ms(p90)} is above the limit of {_ms(limits.max_p90_ms)} (from histogram buckets)")
    reasons = breaches or [
        f"5xx rate {rate:.1%} ({errors} of {window}) within {limits.max_5xx_rate:.1%}",
        f"P90 {_ms(p90) if p90 is not None else 'unknown'} within {_ms(limits.max_p90_ms)}",
    ]
    return WatchVerdict(
        passed=not breaches,
        reasons=tuple(reasons),
        requests=requests,
        errors=errors,
        error_rate=rate,
        p90_ms=p90,
        duration_s=elapsed,
    )


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def watch(
    source: str | Scraper,
    limits: Limits,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    version: str | None = None,
    endpoints: Iterable[str] | None = None,
    on_sample: Callable[[WatchVerdict], None] | None = None,
    smoke: SmokeLoad | None = None,
) -> WatchVerdict:
    """Sample ``source`` (a service URL or a scraper) every ``interval_s`` for ``duration_s`` and judge.

    Stops early on a judged breach. Raises WatchError only when the very first sample cannot be taken
    (nothing is known about the new version); a service that stops answering later fails the watch.
    With ``smoke``, the watch sends that load while it watches, until real traffic alone reaches ``min_requests``.
    """
    options: dict[str, Any] = {"sleep": sleep, "clock": clock, "version": version, "endpoints": endpoints}
    if smoke is None or limits.duration_s <= 0:
        return _watch(source, limits, on_sample=on_sample, **options)
    with SmokeSender(smoke) as sender:

        def sampled(verdict: WatchVerdict) -> None:
            if verdict.requests - sender.sent >= limits.min_requests:
                sender.stop()  # real traffic is enough to judge on
            if on_sample is not None:
                on_sample(verdict)

        verdict = _watch(source, limits, on_sample=sampled, **options)
    note = f"{sender.sent} of the requests were the watch's own smoke load ({sender.failed} of them failed)"
    return replace(verdict, reasons=(*verdict.reasons, note))


def _watch(
    source: str | Scraper,
    limits: Limits,
    *,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
    version: str | None,
    endpoints: Iterable[str] | None,
    on_sample: Callable[[WatchVerdict], None] | None,
) -> WatchVerdict:
    if limits.duration_s <= 0:
        return WatchVerdict(passed=True, judged=False, reasons=("deploy.watch.duration_s is 0: not watched",))
    scrape = http_scraper(source) if isinstance(source, str) else source
    wanted = tuple(endpoints) if endpoints is not None else None
    first = Sample(clock(), scrape())
    latest = first
    samples = 1
    deadline = first.at + limits.duration_s
    while (now := clock()) < deadline:
        sleep(min(limits.interval_s, deadline - now))
        try:
            series = scrape()
        except WatchError as exc:
            verdict = judge(first, latest, limits, version=version, endpoints=wanted)
            return replace(
                verdict,
                passed=False,
                judged=True,
                reasons=(f"the service stopped answering after {latest.at - first.at:.0f} s: {exc}", *verdict.reasons),
                samples=samples,
            )
        latest = Sample(clock(), series)
        samples += 1
        verdict = replace(judge(first, latest, limits, version=version, endpoints=wanted), samples=samples)
        if on_sample is not None:
            on_sample(verdict)
        if verdict.judged and not verdict.passed:
            return verdict
    return replace(judge(first, latest, limits, version=version, endpoints=wanted), samples=samples)


def merge(parts: Iterable[Series]) -> Series:
    """One series map from several scrapes (each labelled with its own SOURCE, e.g. a pod name)."""
    merged: Series = {}
    for part in parts:
        merged.update(part)
    return merged
