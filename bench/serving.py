"""Serving benchmark: the template's BentoML service vs a hand-written FastAPI app, same model, same load.

    python bench/serving.py [--model iris_classifier] [--forest 200] [--users 50] [--duration 20] [--rounds 2]
                            [--set serving.batching.enabled=false ...]

Both servers run one worker on 127.0.0.1; each round starts each server fresh and alternates which goes
first, then Locust (the model's own locustfile, headless) loads it. Prints RPS, P50 and P90 for both and
their ratios (BentoML / FastAPI). `--forest N` swaps the trained model for an N-tree random forest (a
heavier model) behind the same service. `--set` overrides config.yaml keys in a temporary copy of the model
folder, to compare serving settings by measurement. Needs the model's requirements plus fastapi, uvicorn and locust.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT_S = 20  # how long Locust lets requests in flight at the end finish (counted in the results)


@dataclass
class Result:
    server: str
    rps: float
    p50: float
    p90: float
    failures: int
    requests: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not ready after {timeout}s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def train(model_dir: Path, forest: int, python: str = sys.executable) -> str:
    code = (
        "import sys; sys.path.insert(0, '.');"
        "import train, model_io, api_schema;"
        f"forest = {forest};"
        "data = train.load_data(); tr, ho = train.split(data);"
        "from sklearn import ensemble as e;"
        "RF = e.RandomForestClassifier if hasattr(api_schema, 'CLASS_NAMES') else e.RandomForestRegressor;"
        "m = train.fit(RF(n_estimators=forest, random_state=0, n_jobs=1) if forest else train.build_model(), tr);"
        "print(model_io.save(m, train.evaluate(m, ho), {'framework': 'bench', 'git_commit': 'bench'}))"
    )
    out = subprocess.run([python, "-c", code], cwd=model_dir, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def service_name(path: Path) -> str:
    """The service's name in service.py: `Name = build_service(...)` (modelkit) or `class Name:`."""
    for line in path.read_text().splitlines():
        if match := re.match(r"^(\w+) = build_service\(", line) or re.match(r"^class (\w+)\b", line):
            return match.group(1)
    raise SystemExit(f"no service found in {path}")


def start(
    server: str, model_dir: Path, tag: str, port: int, log: Path, python: str = sys.executable
) -> subprocess.Popen[bytes]:
    if server == "bentoml":
        service = service_name(model_dir / "service.py")
        cmd = [
            python,
            "-m",
            "bentoml",
            "serve",
            f"service:{service}",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
    else:
        cmd = [python, str(ROOT / "bench" / "fastapi_baseline.py"), str(model_dir), tag, str(port)]
    with log.open("wb") as handle:
        return subprocess.Popen(cmd, cwd=model_dir, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)


def load(
    model_dir: Path, url: str, users: int, duration: int, prefix: Path, python: str = sys.executable
) -> tuple[float, float, float, int, int]:
    cmd = [
        python,
        "-m",
        "locust",
        "-f",
        str(model_dir / "locustfile.py"),
        "--host",
        url,
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration}s",
        "--csv",
        str(prefix),
        "--only-summary",
        "--loglevel",
        "WARNING",
        # Requests in flight when the time is up are finished and counted, not cut off (as the gate does): on a
        # busy machine a short run's every request could still be in flight at its end (CI: 0 of 10 users'
        # image requests completed in 8 s).
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
    ]
    run = subprocess.run(
        cmd, cwd=model_dir, capture_output=True, text=True, check=False, timeout=duration + STOP_TIMEOUT_S + 60
    )
    with open(f"{prefix}_stats.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["Name"] == "Aggregated")
    if int(row["Request Count"]) == 0:  # no percentiles to read ("N/A"): say why instead
        raise RuntimeError(f"Locust completed no request to {url} in {duration}s: {run.stderr[-1500:]}")
    return (
        float(row["Requests/s"]),
        float(row["50%"]),
        float(row["90%"]),
        int(row["Failure Count"]),
        int(row["Request Count"]),
    )


def patched_copy(model_dir: Path, overrides: list[str], tmp: Path) -> Path:
    """A copy of the model folder whose config.yaml has ``key.path=value`` overrides (values parsed as YAML)."""
    copy = tmp / "models" / model_dir.name
    shutil.copytree(model_dir, copy, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    for override in overrides:
        key, _, value = override.partition("=")
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    (copy / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return copy


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """The options every side-by-side serving bench shares (this one and bench/serving_inputs.py)."""
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")


def one_round(
    round_no: int,
    model_dir: Path,
    tag: str,
    users: int,
    duration: int,
    tmp: Path,
    python: str = sys.executable,
    label: str = "",
    on_ready: Callable[[str, str], None] | None = None,
) -> list[Result]:
    """Each server started fresh and loaded in turn, the order alternating with ``round_no`` (noise hits both);
    ``on_ready(server, url)`` runs before the load starts."""
    results: list[Result] = []
    order = ("bentoml", "fastapi") if round_no % 2 == 0 else ("fastapi", "bentoml")
    for server in order:
        stem = "-".join(filter(None, (label.strip(), server, str(round_no))))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = start(server, model_dir, tag, port, tmp / f"{stem}.log", python)
        try:
            wait_ready(f"{url}/readyz", proc)
            if on_ready is not None:
                on_ready(server, url)
            rps, p50, p90, fails, reqs = load(model_dir, url, users, duration, tmp / stem, python)
        finally:
            stop(proc)
        results.append(Result(server, rps, p50, p90, fails, reqs))
        print(
            f"  {label}round {round_no + 1} {server:8} {rps:8.1f} RPS  P50 {p50:6.0f} ms  P90 {p90:6.0f} ms"
            f"  failures {fails}/{reqs}",
            flush=True,
        )
    return results


def median(results: list[Result], server: str, attr: str) -> float:
    return float(statistics.median(getattr(r, attr) for r in results if r.server == server))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="iris_classifier")
    parser.add_argument("--forest", type=int, default=0, help="serve an N-tree random forest instead")
    add_load_options(parser)
    args = parser.parse_args()
    model_dir = ROOT / "models" / args.model

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        if args.set:
            model_dir = patched_copy(model_dir, args.set, Path(tmp))
            print(f"config overrides: {', '.join(args.set)}")
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        os.environ["BENTOML_DO_NOT_TRACK"] = "true"
        tag = train(model_dir, args.forest)
        label = f"{args.forest}-tree forest" if args.forest else f"{args.model} (template default model)"
        print(f"model: {label}, tag {tag}; {args.users} users, {args.duration}s x {args.rounds} rounds", flush=True)
        results: list[Result] = []
        for round_no in range(args.rounds):
            results += one_round(round_no, model_dir, tag, args.users, args.duration, Path(tmp))

    def med(server: str, attr: str) -> float:
        return median(results, server, attr)

    print("\n| server  | RPS | P50 ms | P90 ms |\n| --- | --- | --- | --- |")
    for server in ("bentoml", "fastapi"):
        print(f"| {server} | {med(server, 'rps'):.0f} | {med(server, 'p50'):.0f} | {med(server, 'p90'):.0f} |")
    rps_ratio = med("bentoml", "rps") / med("fastapi", "rps")
    p90_ratio = med("bentoml", "p90") / med("fastapi", "p90")
    print(
        f"\nratio BentoML/FastAPI: throughput {rps_ratio:.2f}x, P90 {p90_ratio:.2f}x "
        f"(goal: throughput >= 1.0x at P90 <= 1.2x)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
