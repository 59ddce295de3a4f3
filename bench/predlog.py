"""Prediction-log overhead (issue 22): the template's service with its prediction log on vs off, same model, same load.

    python bench/predlog.py [--model iris_classifier] [--users 50] [--duration 20] [--rounds 4] [--sample-rate R]

Run with the model environment's python (it needs the model's requirements and locust). Each round starts the
service fresh twice, once with the log writing to a temporary local store at the config's sample rate
(``monitor.sample_rate``, or ``--sample-rate``) and once with no store (logging off), alternating which goes first;
Locust (the model's own locustfile, headless) loads each. Prints RPS and P90 of both, the ratio (goal: >= 0.95),
the serving worker's CPU time per request in both (less sensitive to a noisy machine than throughput), the log's
writer process's CPU per logged row, and what the log wrote and dropped.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serving import ROOT, Result, free_port, load, patched_copy, start, stop, train, wait_ready  # noqa: E402

URL_ENV = "MODELKIT_PREDLOG_URL"


def dropped(url: str) -> int:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return int(sum(float(v) for v in re.findall(r"^modelkit_predlog_dropped_rows_total\{[^}]*\} (\S+)$", text, re.M)))


def cpu_seconds(server_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of the server's processes, by role: its worker, the log's writer."""
    import psutil

    spent: dict[str, float] = {}
    for child in psutil.Process(server_pid).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
            times = child.cpu_times()
        except psutil.Error:
            continue
        role = "writer" if "predlog_writer" in command else "worker" if "worker" in command else "other"
        spent[role] = spent.get(role, 0.0) + times.user + times.system
    return spent


def logged_rows(store: Path) -> int:
    return sum(pq.read_metadata(path).num_rows for path in store.rglob("*.parquet"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="iris_classifier")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--sample-rate", type=float, default=None, help="override monitor.sample_rate")
    args = parser.parse_args()
    model_dir = ROOT / "models" / args.model

    with tempfile.TemporaryDirectory(prefix="bench-predlog-") as tmp:
        if args.sample_rate is not None:
            model_dir = patched_copy(model_dir, [f"monitor.sample_rate={args.sample_rate}"], Path(tmp))
        os.environ["BENTOML_HOME"] = str(Path(tmp) / "bentoml")
        os.environ["BENTOML_DO_NOT_TRACK"] = "true"
        os.environ.pop(URL_ENV, None)
        tag = train(model_dir, 0)
        print(f"model {args.model}, tag {tag}; {args.users} users, {args.duration}s x {args.rounds} rounds", flush=True)
        results: list[Result] = []
        rows = drops = 0
        cpu: dict[str, list[float]] = {"on": [], "off": []}  # worker CPU seconds per request, per round
        writer_cpu = 0.0
        for round_no in range(args.rounds):
            order = ("on", "off") if round_no % 2 == 0 else ("off", "on")
            for mode in order:
                store = Path(tmp) / f"store-{round_no}"
                if mode == "on":
                    os.environ[URL_ENV] = str(store)
                    os.environ["MODELKIT_ENV"] = "staging"  # a real environment name: any other turns the log off
                port = free_port()
                proc = start("bentoml", model_dir, tag, port, Path(tmp) / f"{mode}-{round_no}.log")
                os.environ.pop(URL_ENV, None)
                url = f"http://127.0.0.1:{port}"
                try:
                    wait_ready(f"{url}/readyz", proc)
                    before = cpu_seconds(proc.pid)
                    rps, p50, p90, fails, reqs = load(
                        model_dir, url, args.users, args.duration, Path(tmp) / f"{mode}-{round_no}"
                    )
                    after = cpu_seconds(proc.pid)
                    spent = {role: after.get(role, 0.0) - before.get(role, 0.0) for role in after}
                    cpu[mode].append(spent.get("worker", 0.0) / max(1, reqs))
                    if mode == "on":
                        drops += dropped(url)
                        writer_cpu += spent.get("writer", 0.0)
                        if "writer" not in after:
                            raise SystemExit(f"round {round_no + 1}: no prediction-log writer process was found")
                finally:
                    stop(proc)  # SIGTERM: the log writes what it holds on the way out
                if mode == "on":
                    written = logged_rows(store)
                    if not written:  # the run measured a service without its log: not what this bench is for
                        raise SystemExit(f"round {round_no + 1}: the log wrote no row; see {Path(tmp) / 'on-0.log'}")
                    rows += written
                    print(f"    the log's writer used {spent.get('writer', 0.0):.2f} CPU s for {written} rows")
                results.append(Result(mode, rps, p50, p90, fails, reqs))
                print(
                    f"  round {round_no + 1} log {mode:3} {rps:8.1f} RPS  P50 {p50:6.0f} ms  P90 {p90:6.0f} ms"
                    f"  failures {fails}/{reqs}",
                    flush=True,
                )

    def median(mode: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in results if r.server == mode)

    print("\n| prediction log | RPS | P50 ms | P90 ms | worker CPU per request |\n| --- | --- | --- | --- | --- |")
    for mode in ("on", "off"):
        print(
            f"| {mode} | {median(mode, 'rps'):.0f} | {median(mode, 'p50'):.0f} | {median(mode, 'p90'):.0f} "
            f"| {statistics.median(cpu[mode]) * 1e6:.0f} us |"
        )
    ratio = median("on", "rps") / median("off", "rps")
    print(f"\nthroughput with the log / without: {ratio:.3f}x (goal >= 0.95); rows logged {rows}, dropped {drops}")
    # Each round's two runs are minutes apart at most: their ratio sees the same machine load, the medians above
    # may not (a busy neighbour in one round moves one mode's median).
    on = [r.rps for r in results if r.server == "on"]
    off = [r.rps for r in results if r.server == "off"]
    paired = sorted(a / b for a, b in zip(on, off, strict=True) if b > 0)
    if paired:
        print(
            f"per round (log on / off, same round): median {statistics.median(paired):.3f}x, "
            f"from {paired[0]:.3f}x to {paired[-1]:.3f}x over {len(paired)} rounds"
        )
    cpu_ratio = statistics.median(cpu["on"]) / statistics.median(cpu["off"])
    print(
        f"serving worker's CPU per request, log on / off: {cpu_ratio:.3f}x; the writer process: "
        f"{writer_cpu / max(1, rows) * 1e6:.1f} us of CPU per logged row"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
