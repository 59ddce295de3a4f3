"""The post-deploy watch: a real HTTP stand-in of a BentoML service, traffic sent by the test.

The watch's ``sleep`` is where the test sends traffic and its ``clock`` advances by what was slept:
real requests and real /metrics scrapes, no waiting and no timing assumptions.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from modelctl import watch
from modelctl.watch import Limits, Sample, WatchError
from modelkit import parse_config
from tests.targets.fakes import FakeBento, Server, serve

REAL_METRICS = Path(__file__).parent / "targets" / "data" / "bentoml-1.4.40-metrics.txt"
LIMITS = Limits(duration_s=30, interval_s=5, min_requests=20, max_5xx_rate=0.01, max_p90_ms=500)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def traffic(url: str, clock: Clock, per_interval: int, probes: int = 2) -> Callable[[float], None]:
    """A ``sleep`` that sends ``per_interval`` predictions (and a few probes) instead of waiting."""

    def sleep(seconds: float) -> None:
        with httpx.Client(base_url=url, timeout=10) as client:
            for _ in range(per_interval):
                client.post("/predict", json={"rows": [[5.1, 3.5, 1.4, 0.2]]})
            for _ in range(probes):
                client.get("/livez")
                client.get("/readyz")
        clock.now += seconds

    return sleep


@contextmanager
def fake_bento(**kwargs: object) -> Iterator[tuple[FakeBento, Server]]:
    bento = FakeBento(**kwargs)  # type: ignore[arg-type]
    with serve(bento) as server:
        yield bento, server


# --- the loop against a live stand-in ----------------------------------------------------------------


def test_a_candidate_that_starts_failing_after_n_requests_fails_the_watch_early() -> None:
    clock = Clock()
    seen: list[watch.WatchVerdict] = []
    with fake_bento(fail_after=30) as (bento, server):
        verdict = watch.watch(
            server.url, LIMITS, sleep=traffic(server.url, clock, 10), clock=clock, on_sample=seen.append
        )
    assert not verdict.passed and verdict.judged
    assert verdict.reasons[0].startswith(
        "5xx rate 25.0% (10 of 40 requests in 20 s) is above deploy.watch.max_5xx_rate"
    )
    assert (verdict.requests, verdict.errors, verdict.error_rate) == (40, 10, 0.25)
    # Healthy for three samples, failed on the fourth: it stopped there instead of watching 30 s.
    assert [v.passed for v in seen] == [True, True, True, False] and verdict.samples == 5
    assert bento.predictions == 40


def test_a_healthy_candidate_passes_and_probes_are_not_counted_as_traffic() -> None:
    clock = Clock()
    with fake_bento() as (bento, server):
        verdict = watch.watch(server.url, LIMITS, sleep=traffic(server.url, clock, 10, probes=5), clock=clock)
    assert verdict.passed and verdict.judged
    assert (verdict.requests, verdict.errors, verdict.error_rate) == (60, 0, 0.0)
    assert verdict.p90_ms is not None and verdict.p90_ms <= 5.0  # 4 ms requests: inside the 5 ms bucket
    assert verdict.duration_s == 30 and verdict.samples == 7
    assert verdict.summary().startswith("watch passed: 5xx rate 0.0% (0 of 60 requests in 30 s) within 1.0%")
    assert bento.counts[("/livez", 200)] == 30  # served and in /metrics, but not judged


def test_too_few_requests_are_not_judged() -> None:
    clock = Clock()
    with fake_bento(fail_after=0) as (_, server):  # every prediction fails, but there are only 6
        verdict = watch.watch(server.url, LIMITS, sleep=traffic(server.url, clock, 1), clock=clock)
    assert verdict.passed and not verdict.judged
    assert verdict.requests == 6 and verdict.errors == 6
    assert (
        "only 6 requests in 30 s (deploy.watch.min_requests is 20): 5xx rate and P90 not judged" in verdict.reasons[0]
    )


def test_a_p90_breach_fails_the_watch() -> None:
    clock = Clock()
    with fake_bento(latency_s=0.8) as (_, server):
        verdict = watch.watch(server.url, LIMITS, sleep=traffic(server.url, clock, 10), clock=clock)
    assert not verdict.passed and verdict.judged and verdict.error_rate == 0
    assert verdict.p90_ms is not None and 500 < verdict.p90_ms <= 1000  # inside the (0.5, 1.0] s bucket
    assert verdict.reasons == (f"P90 {verdict.p90_ms:.0f} ms is above the limit of 500 ms (from histogram buckets)",)


def test_a_service_that_stops_answering_fails_the_watch() -> None:
    clock = Clock()
    with fake_bento() as (bento, server):
        send = traffic(server.url, clock, 10)

        def sleep(seconds: float) -> None:
            send(seconds)
            if clock.now - 1000.0 >= 10:
                bento.metrics_status = 503  # the new version falls over 10 s in

        verdict = watch.watch(server.url, LIMITS, sleep=sleep, clock=clock)
    assert not verdict.passed and verdict.judged
    assert verdict.reasons[0].startswith("the service stopped answering after 5 s:")
    assert "answered HTTP 503" in verdict.reasons[0]


def test_metrics_turned_off_cannot_be_watched() -> None:
    with (
        fake_bento(metrics_status=404) as (_, server),
        pytest.raises(WatchError, match=r"answered HTTP 404 \(is serving.metrics off\?\)"),
    ):
        watch.watch(server.url, LIMITS, sleep=lambda s: None)


def test_an_unreachable_service_cannot_be_watched() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(WatchError, match=f"cannot reach http://127.0.0.1:{port}/metrics: ConnectError"):
        watch.watch(f"http://127.0.0.1:{port}", LIMITS, sleep=lambda s: None)


def test_a_zero_duration_is_not_watched() -> None:
    verdict = watch.watch("http://127.0.0.1:9", Limits(duration_s=0), sleep=lambda s: pytest.fail("slept"))
    assert verdict.passed and not verdict.judged and verdict.reasons == ("deploy.watch.duration_s is 0: not watched",)


def test_a_scraper_stands_for_a_remote_target() -> None:
    """Kubernetes and BentoCloud hand watch() a scraper; the decision is the same."""
    pods = [FakeBento(fail_after=5), FakeBento()]
    clock = Clock()

    def scraper() -> watch.Series:
        return watch.merge(watch.parse_metrics(pod.metrics(), source=f"pod-{i}") for i, pod in enumerate(pods))

    def sleep(seconds: float) -> None:
        for pod in pods:
            for _ in range(10):
                pod(_predict())
        clock.now += seconds

    verdict = watch.watch(scraper, LIMITS, sleep=sleep, clock=clock)
    # Each pod counts its own requests; the merged counters add up across pods.
    assert not verdict.passed and verdict.requests == 20 and verdict.errors == 5


def _predict() -> object:
    from tests.targets.fakes import Call

    return Call("POST", "/predict", {}, None)


# --- the decision ---------------------------------------------------------------------------------


def test_real_bentoml_metrics_are_parsed() -> None:
    series = watch.parse_metrics(REAL_METRICS.read_text())
    key = (
        "bentoml_service_request_total",
        (
            ("endpoint", "/predict"),
            ("http_response_code", "200"),
            ("runner_name", "Tiny"),
            ("service_name", "tiny_model"),
            ("service_version", "5nyej5xkh6hyyax4"),
        ),
    )
    assert series[key] == 3.0
    verdict = watch.judge(Sample(0, {}), Sample(30, series), Limits(min_requests=1))
    # 3 predictions, 1 bad request (400) and 1 unknown path (404); /livez and /readyz are probes.
    assert (verdict.requests, verdict.errors) == (5, 0) and verdict.passed
    assert verdict.p90_ms is not None and 50 < verdict.p90_ms <= 100  # the slow first request, in (0.05, 0.1]


def test_only_the_named_version_and_endpoints_are_judged() -> None:
    old, new = FakeBento(version="old", fail_after=0), FakeBento(version="new")
    for bento in (old, new):
        for _ in range(30):
            bento(_predict())
    merged = watch.merge([watch.parse_metrics(old.metrics(), "a"), watch.parse_metrics(new.metrics(), "b")])
    everything = watch.judge(Sample(0, {}), Sample(10, merged), LIMITS)
    assert not everything.passed and everything.requests == 60
    assert watch.judge(Sample(0, {}), Sample(10, merged), LIMITS, version="new").passed
    assert watch.judge(Sample(0, {}), Sample(10, merged), LIMITS, endpoints=["/other"]).requests == 0


def test_a_counter_reset_counts_from_zero() -> None:
    key = ("bentoml_service_request_total", (("endpoint", "/predict"), ("http_response_code", "500")))
    ok = ("bentoml_service_request_total", (("endpoint", "/predict"), ("http_response_code", "200")))
    # The process restarted: its counters went from 100 down to 25 (25 new 500s), 200s from 50 to 0.
    verdict = watch.judge(Sample(0, {key: 100.0, ok: 50.0}), Sample(10, {key: 25.0, ok: 0.0}), LIMITS)
    assert (verdict.requests, verdict.errors) == (25, 25) and not verdict.passed


@pytest.mark.parametrize(
    ("buckets", "expected"),
    [
        ({0.1: 0, 0.5: 100, math.inf: 100}, 460.0),  # rank 90 of 100, linear inside (0.1, 0.5]
        ({0.1: 90, 0.5: 100, math.inf: 100}, 100.0),
        ({0.1: 0, 0.5: 0, math.inf: 10}, 500.0),  # in +Inf: the largest finite bound
        ({0.1: 0, math.inf: 0}, None),
        ({}, None),
    ],
)
def test_p90_from_buckets(buckets: dict[float, float], expected: float | None) -> None:
    result = watch.p90_ms(buckets)
    assert result == pytest.approx(expected) if expected is not None else result is None


def test_the_text_parser_handles_escapes_and_skips_other_families() -> None:
    text = (
        "# TYPE bentoml_service_request_total counter\n"
        'bentoml_service_request_total{endpoint="/a\\"b,c}",http_response_code="500"} 3.0 1700000000\n'
        'bentoml_service_adaptive_batch_size_count{x="1"} 9\n'
        "bentoml_service_request_total{broken 1\n"
    )
    assert watch.parse_metrics(text) == {
        ("bentoml_service_request_total", (("endpoint", '/a"b,c}'), ("http_response_code", "500"))): 3.0
    }


def test_limits_come_from_the_config() -> None:
    base = "name: m\ndescription: d\nowner: o\nframework: sklearn\nloadtest: {max_p90_ms: 250}\n"
    assert Limits.from_config(parse_config(base)) == Limits(30, 5.0, 20, 0.01, 250.0)
    tuned = (
        base
        + "deploy: {watch: {duration_s: 120, interval_s: 10, min_requests: 5, max_5xx_rate: 0.05, max_p90_ms: 900}}\n"
    )
    assert Limits.from_config(parse_config(tuned)) == Limits(120, 10.0, 5, 0.05, 900.0)


# --- the watch's own smoke load (issue 22, item 6) ---------------------------------------------------------------

SMOKE_LIMITS = Limits(duration_s=3, interval_s=1, min_requests=10, max_5xx_rate=0.01, max_p90_ms=500)


def smoke_load(url: str, rate: float = 20.0) -> watch.SmokeLoad:
    return watch.SmokeLoad(url, ({"instances": [{"x": 1.0}]}, {"instances": [{"x": 2.0}, {"x": 3.0}]}), rate)


def test_with_no_traffic_the_smoke_load_gets_a_healthy_version_judged() -> None:
    with fake_bento() as (bento, server):
        quiet = watch.watch(server.url, SMOKE_LIMITS)
        verdict = watch.watch(server.url, SMOKE_LIMITS, smoke=smoke_load(server.url))
    assert not quiet.judged  # what the demo used to print: only 0 requests
    assert verdict.judged and verdict.passed, verdict.reasons
    assert verdict.requests >= 20 and bento.predictions >= verdict.requests
    assert verdict.reasons[-1].startswith(f"{bento.predictions} of the requests were the watch's own smoke load")


def test_the_smoke_load_finds_a_failing_version() -> None:
    with fake_bento(fail_after=0) as (bento, server):
        verdict = watch.watch(server.url, SMOKE_LIMITS, smoke=smoke_load(server.url))
    assert verdict.judged and not verdict.passed
    assert verdict.reasons[0].startswith("5xx rate 100.0%")
    assert f"({bento.predictions} of them failed)" in verdict.reasons[-1]


def test_real_traffic_stops_the_smoke_load() -> None:
    clock = Clock()
    with fake_bento() as (bento, server):
        verdict = watch.watch(
            server.url,
            LIMITS,
            sleep=traffic(server.url, clock, 30),
            clock=clock,
            smoke=smoke_load(server.url, rate=0.2),
        )
    assert verdict.passed and verdict.judged
    smoke_sent = bento.predictions - 30 * 6
    # Sent at once, then stopped after the first sample showed real traffic. The sender keeps wall-clock time (one
    # request per 5 s here), so a slow machine sending the fake traffic does not let it send more.
    assert 1 <= smoke_sent <= 3


def test_smoke_goes_where_the_config_says_and_production_only_when_listed(tmp_path: Path) -> None:
    (tmp_path / "sample_request.json").write_text('{"instances": [{"a": 1.5}, {"a": 2.5}]}')
    base = "name: m\ndescription: d\nowner: o\nframework: sklearn\n"
    config = parse_config(base)
    staging = watch.SmokeLoad.for_deploy(config, tmp_path, "staging", "http://127.0.0.1:3100/")
    assert staging is not None and staging.url == "http://127.0.0.1:3100" and staging.rate_per_s == 5.0
    assert all(row in ({"a": 1.5}, {"a": 2.5}) for body in staging.bodies for row in body["instances"])
    assert watch.SmokeLoad.for_deploy(config, tmp_path, "dev", "http://127.0.0.1:3000") is not None
    assert watch.SmokeLoad.for_deploy(config, tmp_path, "production", "http://127.0.0.1:3200") is None
    assert watch.SmokeLoad.for_deploy(config, tmp_path, "staging", "kubernetes://ctx/ns/m") is None
    listed = parse_config(base + "monitor: {smoke: {environments: [production], rate_per_s: 1}}\n")
    production = watch.SmokeLoad.for_deploy(listed, tmp_path, "production", "http://127.0.0.1:3200")
    assert production is not None and production.rate_per_s == 1.0
    assert watch.SmokeLoad.for_deploy(listed, tmp_path, "staging", "http://127.0.0.1:3100") is None
