"""How long `modelctl monitor` takes on a large prediction log (issue 22: "how long monitor takes for 1 million
logged rows"), against reading the same log's Parquet parts alone, in the same run.

    python bench/monitor_rows.py [--rows 1000000] [--parts 10] [--rounds 3]

Run with the tooling environment's python (it needs modelctl). A clone of this repository in a temp folder gets the
example model's live version in its local store (a reference of 2,000 training rows, as training writes it) and
``--rows`` logged rows in the prediction-log format (``--parts`` Parquet parts over the last day, one feature
shifted so drift is found), written by modelkit's own ``PartWriter``. Then ``modelctl monitor iris_classifier --env
staging`` runs ``--rounds`` times (a fresh process each, reports and record written as usual) beside a plain
``pyarrow.dataset`` read of the same parts. Prints both medians and their ratio, and the exit code (3: drift found).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml

from modelkit import predlog
from modelkit.predlog_writer import PartWriter, Request
from modelkit.training import reference_table

ROOT = Path(__file__).resolve().parents[1]
MODEL = "iris_classifier"
VERSION = "v1"
NAMES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
CLASSES = ("setosa", "versicolor", "virginica")
MEANS = np.array([5.8, 3.0, 3.8, 1.2])
SPREAD = np.array([0.8, 0.4, 1.7, 0.7])


def draw(rows: int, seed: int, shift: float = 0.0) -> np.ndarray:
    values = np.random.default_rng(seed).normal(MEANS, SPREAD, size=(rows, len(NAMES)))
    values[:, 2] += shift  # petal_length: what the monitor should find
    return np.round(values, 3)


def output(features: np.ndarray) -> np.ndarray:
    scores = np.stack([-((features[:, 0] - c) ** 2) for c in (5.0, 5.9, 6.6)], 1)
    probabilities = np.exp(scores * 4)
    result: np.ndarray = probabilities / probabilities.sum(axis=1, keepdims=True)
    return result


def prepare(repo: Path, rows: int, parts: int) -> Path:
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    config_path = repo / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["monitor"] = {**config.get("monitor", {}), "drift_share": 0.25, "window": "7d"}
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    store = repo / ".modelctl"
    folder = store / "bentoml" / "models" / MODEL / VERSION
    folder.mkdir(parents=True)
    (folder / "model.yaml").write_text(
        yaml.safe_dump({"name": MODEL, "version": VERSION, "metadata": {"metrics": {"accuracy": 0.95}}})
    )
    training = draw(2000, seed=1)
    names = list(NAMES)
    pq.write_table(
        reference_table(training, output(training), names=names, classes=CLASSES), folder / predlog.REFERENCE_FILE
    )
    writer = PartWriter(
        predlog.Destination(str(store)), model=MODEL, env="staging", version=f"{MODEL}:{VERSION}", classes=CLASSES
    )
    now = time.time()
    per_part = rows // parts
    for part in range(parts):
        features = draw(per_part, seed=100 + part, shift=1.5)
        records = [dict(zip(NAMES, row, strict=True)) for row in features.tolist()]
        at = now - 3600 * (parts - part)
        # requests of 4 rows, as a client batching its calls would send them
        requests = [Request(at, records[i : i + 4], output(features[i : i + 4])) for i in range(0, per_part, 4)]
        writer.add(requests)
        outcome = writer.write()
        print(f"  part {part + 1}/{parts}: {outcome.written} rows", flush=True)
    return store / predlog.PREFIX / MODEL / "staging"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-monitor-") as tmp:
        repo = Path(tmp) / "repo"
        print(f"writing {args.rows:,} logged rows in {args.parts} parts", flush=True)
        logs = prepare(repo, args.rows, args.parts)
        env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        env.pop("GITHUB_STEP_SUMMARY", None)
        monitor: list[float] = []
        read: list[float] = []
        code = -1
        for round_no in range(args.rounds):
            started = time.perf_counter()
            table = ds.dataset(str(logs), format="parquet").to_table()
            read.append(time.perf_counter() - started)
            assert table.num_rows == args.rows, table.num_rows
            started = time.perf_counter()
            run = subprocess.run(
                [str(Path(sys.executable).parent / "modelctl"), "monitor", MODEL, "--env", "staging"],
                cwd=repo,
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            monitor.append(time.perf_counter() - started)
            code = run.returncode
            if code not in (0, 3):
                print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
                return 1
            print(f"  round {round_no + 1}: monitor {monitor[-1]:.2f} s (exit {code}), read {read[-1]:.2f} s")
        print(run.stdout[-1500:])
    median_monitor, median_read = statistics.median(monitor), statistics.median(read)
    print(
        f"\n`modelctl monitor` on {args.rows:,} logged rows: {median_monitor:.2f} s (median of {args.rounds}; "
        f"a fresh process each, reports written), exit {code}; reading the parts alone: {median_read:.2f} s; "
        f"ratio {median_monitor / median_read:.1f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
