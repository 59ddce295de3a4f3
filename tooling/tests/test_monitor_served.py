"""Issue 22 end to end: the example model trained (with its reference), served by a real `bentoml serve` that logs its
predictions into the state store, real HTTP traffic, then `modelctl monitor` on what it logged."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
import yaml

from modelctl import procs
from modelctl.delivery import train
from modelctl.monitor import loop
from modelctl.monitor.reference import reference_path
from modelctl.monitor.serving import predlog_env
from modelctl.processenv import model_process_env
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import Cli, cli_in
from tests.stand_ins import http_stand_in

MODEL = "iris_classifier"
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
ENV = "staging"
SERVER_LOG: list[Path] = []  # the running server's log, shown when a request fails

# What the template's train.py does after model_io.save (the lead adds the line; see modelkit.training.save_reference).
SAVE_REFERENCE = """
import os, sys
sys.path.insert(0, os.getcwd())  # the model folder (this script lives elsewhere)
import bentoml, model_io, train
from api_schema import CLASS_NAMES, FEATURES
from modelkit.training import save_reference
tag = sys.argv[1]
train_set, _ = train.split(train.load_data())
model = model_io.load(bentoml.models.get(tag))
print(save_reference(tag, train_set.features, model_io.predict(model, train_set.features), names=FEATURES,
                     classes=CLASS_NAMES, target=train_set.target))
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    from tests.conftest import copy_monorepo, fast_config

    root = copy_monorepo(tmp_path_factory.mktemp("monitored") / "repo")
    fast_config(root)
    path = root / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["monitor"] = {"flush_s": 0.5, "min_rows": 100, "drift_share": 0.25, "min_labels": 50}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    model = Repo(root).model(MODEL)
    tag = train.train(model).model_tag
    script = tmp_path_factory.mktemp("scripts") / "save_reference.py"
    script.write_text(SAVE_REFERENCE)
    model.run([script, tag], what="save_reference", env={"BENTOML_HOME": str(State.of(model.repo).bentoml_home)})
    yield root, tag


@contextmanager
def serving(root: Path, tmp_path: Path) -> Iterator[tuple[str, procs.Server]]:
    """The model folder served on a free port with its prediction log on: (URL, server). Stopped afterwards."""
    repo = Repo(root)
    model = repo.model(MODEL)
    python = model.python()
    port = procs.free_port()
    env = model_process_env({"BENTOML_HOME": str(State.of(repo).bentoml_home), **predlog_env(repo, ENV)}, python=python)
    cmd = [str(python), "-m", "bentoml", "serve", "service:IrisClassifier", "--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    server = procs.start(cmd, model.folder, log, env)
    try:
        procs.wait_ready(f"http://127.0.0.1:{port}", server.pid, log, timeout=240)
        SERVER_LOG[:] = [log]
        yield f"http://127.0.0.1:{port}", server
    finally:
        server.stop()


@pytest.fixture
def served(trained: tuple[Path, str], tmp_path: Path) -> Iterator[str]:
    with serving(trained[0], tmp_path) as (url, _):
        yield url


def reference_rows(root: Path, tag: str) -> list[dict[str, Any]]:
    table = pq.read_table(reference_path(State.of(Repo(root)).bentoml_home, tag)).to_pylist()
    return [{**{n: r[f"feature.{n}"] for n in NAMES}, "label": r["label"]} for r in table]


def send(url: str, rows: list[dict[str, Any]], shift: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """POST rows 1-4 at a time, as clients would; the feature rows sent."""
    sent = []
    rng = random.Random(1)
    with httpx.Client(base_url=url, timeout=30) as client:
        index = 0
        while index < len(rows):
            batch = rows[index : index + rng.randint(1, 4)]
            index += len(batch)
            instances = [{n: round(r[n] + (shift or {}).get(n, 0.0), 3) for n in NAMES} for r in batch]
            response = client.post("/predict", json={"instances": instances})
            assert response.status_code == 200, procs.log_tail(SERVER_LOG[0], 40)
            sent += instances
    return sent


def logged_rows(root: Path) -> int:
    return sum(
        pq.read_metadata(p).num_rows for p in (root / ".modelctl" / "predictions" / MODEL / ENV).rglob("*.parquet")
    )


def wait_logged(root: Path, rows: int) -> None:
    deadline = time.monotonic() + 60
    while logged_rows(root) < rows:
        assert time.monotonic() < deadline, f"only {logged_rows(root)} of {rows} rows logged after 60 s"
        time.sleep(0.2)


def clear_log(root: Path) -> None:
    for path in (root / ".modelctl" / "predictions" / MODEL).rglob("*.parquet"):
        path.unlink()


def traffic_like_training(root: Path, tag: str, copies: int = 4) -> list[dict[str, Any]]:
    rows = reference_rows(root, tag) * copies
    random.Random(2).shuffle(rows)
    return rows


@pytest.mark.slow
def test_served_traffic_is_logged_and_monitored(
    trained: tuple[Path, str],
    served: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, tag = trained
    cli: Cli = cli_in(root, capsys, monkeypatch)
    clear_log(root)
    rows = traffic_like_training(root, tag)

    # traffic drawn from the training data: quiet
    sent = send(served, rows)
    wait_logged(root, len(sent))
    quiet = cli("monitor", MODEL, "--env", ENV)
    assert quiet.code == 0, quiet.err + quiet.out

    # the right labels: quality holds; flipped labels: quality breached
    labels = tmp_path / "labels.csv"
    lines = [",".join([*NAMES, "label"])] + [
        ",".join([*(repr(s[n]) for n in NAMES), r["label"]]) for s, r in zip(sent, rows, strict=True)
    ]
    labels.write_text("\n".join(lines) + "\n")
    right = cli("monitor", MODEL, "--env", ENV, "--labels", str(labels))
    assert right.code == 0, right.err + right.out
    assert "quality: live accuracy" in right.out and "within limits" in right.out
    flip = {"setosa": "versicolor", "versicolor": "virginica", "virginica": "setosa"}
    flipped = tmp_path / "flipped.csv"
    flipped.write_text(
        "\n".join([lines[0], *(line.rsplit(",", 1)[0] + "," + flip[line.rsplit(",", 1)[1]] for line in lines[1:])])
        + "\n"
    )
    breached = cli("monitor", MODEL, "--env", ENV, "--labels", str(flipped))
    assert breached.code == 3 and "BREACHED" in breached.out

    # one feature shifted: found and named, no unchanged feature blamed
    clear_log(root)
    shifted = send(served, rows, shift={"sepal_width": 1.2})
    wait_logged(root, len(shifted))
    drift = cli("monitor", MODEL, "--env", ENV)
    assert drift.code == 3, drift.err + drift.out
    record = json.loads(sorted((root / ".modelctl" / "monitor" / MODEL / ENV).glob("*.json"))[-1].read_text())
    assert {f["name"] for f in record["features"] if f["drifted"] and f["role"] == "feature"} == {"sepal_width"}

    # the scheduled path: alerts and starts a retrain (a real one, dry run: it must still beat the champion to ship)
    config_path = root / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["monitor"]["retrain_on_drift"] = True
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    from modelctl.delivery.retrain import retrain

    with http_stand_in([200]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url + "/hook")
        acted = loop.scheduled(
            Repo(root).model(MODEL), ENV, retrain=lambda model, env: retrain(model, env, dry_run=True)
        )
    assert acted.alerted and "sepal_width" in slack.requests[0].body["text"]
    assert acted.retrain["decision"] in ("would promote", "would keep champion")

    # drops are exported on the service's /metrics
    metrics = httpx.get(f"{served}/metrics", timeout=10).text
    assert 'modelkit_predlog_dropped_rows_total{reason="buffer_full"} 0.0' in metrics


@pytest.mark.slow
def test_a_stopped_server_writes_what_its_log_holds(trained: tuple[Path, str], tmp_path: Path) -> None:
    """Rows still buffered when the server is stopped (SIGTERM) are written on the way out, not lost."""
    root, tag = trained
    path = root / "models" / MODEL / "config.yaml"
    original = path.read_text()
    config = yaml.safe_load(original)
    config["monitor"]["flush_s"] = 600  # nothing is written before the stop
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    clear_log(root)
    try:
        with serving(root, tmp_path) as (url, server):
            sent = send(url, reference_rows(root, tag))
            assert logged_rows(root) == 0
            server.stop()
    finally:
        path.write_text(original)
    assert logged_rows(root) == len(sent)


@pytest.mark.slow
def test_the_watch_judges_a_real_server_with_its_own_smoke_load(trained: tuple[Path, str], served: str) -> None:
    """What `make demo` waited 30 s for ("only 0 requests"): with the smoke load the new version is judged."""
    from modelctl import watch

    model = Repo(trained[0]).model(MODEL)
    limits = watch.Limits(duration_s=4, interval_s=1, min_requests=10, max_5xx_rate=0.01, max_p90_ms=5000)
    smoke = watch.SmokeLoad.for_deploy(model.config, model.folder, "staging", served)
    assert smoke is not None and watch.SmokeLoad.for_deploy(model.config, model.folder, "production", served) is None
    verdict = watch.watch(served, limits, smoke=smoke)
    assert verdict.judged and verdict.passed, verdict.reasons
    assert (
        verdict.requests >= 10
        and "of the requests were the watch's own smoke load (0 of them failed)" in verdict.reasons[-1]
    )
