"""Benchmark `modelctl dashboard` at scale (issue 23.5: 1,000 models with 50 versions each build in under 10 s).

    .tox/tooling/bin/python bench/dashboard.py [--models 1000] [--versions 50] [--baseline 10]
        [--no-browser] [--keep DIR]

For each size (the baseline, then the large one): a temporary monorepo of N model folders (valid configs) and a
local state store with, per model, a release ledger of V deploys (staging every version, production every other
one, a failed attempt every tenth, a rollback every 25th), a retrain log of V/2 runs and 10 drift records, written
in the exact shape modelctl writes (the ledger as `Ledger` stores it, drift as `modelctl monitor` does). Then:

- the build: one `modelctl dashboard -o DIR` process, as CI runs it (wall time, interpreter start included; after
  one warm-up call, with bytecode caching on), and the same build in-process split into collect and render;
- in headless Chromium (Selenium, the same driver set-up as the browser tests) over a loopback HTTP server: the
  overview's first contentful paint, DOMContentLoaded and load event (ms from navigation start), the time one
  filter keystroke takes over every row, and how long a model page takes until its charts are drawn.

Ratios are against the baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tooling"))  # tests.dashboard.browser: the browser tests' Chromium set-up

from tests.dashboard import browser  # noqa: E402

from modelctl.dashboard.collect import collect  # noqa: E402
from modelctl.dashboard.render import render  # noqa: E402
from modelctl.ledger import Ledger, Record, RetrainLog, next_release  # noqa: E402
from modelctl.repo import Repo  # noqa: E402
from modelctl.state import State  # noqa: E402

CONFIG = """name: {name}
description: A generated model for the dashboard benchmark.
owner: team-{team}
framework: {framework}
task: {task}
loadtest: {{max_p90_ms: 500, max_error_rate: 0.01}}
"""
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "pytorch")


def stamp(day: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(1_700_000_000 + day * 86_400))


def ledger_records(name: str, versions: int, rng: random.Random) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []

    def add(env: str, outcome: str, bento: str, day: float, **fields: Any) -> None:
        gate = {"p90_ms": round(rng.uniform(40, 480), 1), "error_rate": round(rng.uniform(0, 0.01), 5),
                "rps": round(rng.uniform(50, 400), 1), "requests": 4000}  # fmt: skip
        record = Record(model=name, env=env, target="local", outcome=outcome, bento=f"{name}:{bento}",
                        loadtest=gate if outcome == "deployed" else {}, triggered_by="bench@ci", at=stamp(day),
                        id=f"{name}-{len(records)}", **fields)  # fmt: skip
        if outcome == "deployed":
            record.version = next_release(records, env)
        records.append(asdict(record))

    for version in range(1, versions + 1):
        bento = f"b{version:04d}"
        if version % 10 == 3:
            add(
                "staging",
                "failed",
                bento,
                version - 0.5,
                reason="P90 latency 612 ms exceeds loadtest.max_p90_ms 500 ms",
            )
        add("staging", "deployed", bento, version)
        if version % 2 == 0:
            add("production", "deployed", bento, version + 0.2)
        if version % 25 == 7:
            back = next(r for r in reversed(records) if r["env"] == "staging" and r["outcome"] == "deployed"
                        and r["bento"] != f"{name}:{bento}")  # fmt: skip
            add("staging", "rolled_back", back["bento"].split(":")[1], version + 0.4, version=back["version"])
    return records


def generate(root: Path, models: int, versions: int, rng: random.Random) -> tuple[Repo, State]:
    (root / "repo" / "models").mkdir(parents=True)
    (root / "repo" / "cookiecutter-model").mkdir()
    repo, state = Repo(root / "repo"), State(root / "state")
    ledger, retrains, store = Ledger(state.store), RetrainLog(state.store), state.store
    for index in range(models):
        name = f"model_{index:04d}"
        folder = repo.model_dir(name)
        folder.mkdir()
        task = "regression" if index % 3 == 0 else "classification"
        text = CONFIG.format(name=name, team=index % 17, framework=FRAMEWORKS[index % 4], task=task)
        (folder / "config.yaml").write_text(text, encoding="utf-8")
        if index % 20 == 19:
            continue  # never deployed
        records = ledger_records(name, versions, rng)
        store.write_json(ledger.key(name), {"model": name, "records": records}, keep_previous=False)
        metric = "rmse" if task == "regression" else "accuracy"
        runs = [
            {"model": name, "env": "production", "at": stamp(day + 0.7), "metric": metric,
             "decision": "failed" if day % 13 == 5 else rng.choice(["kept champion", "promoted"]),
             "candidate_metrics": {metric: round(rng.uniform(0.8, 0.95), 4)},
             "champion_metrics": {metric: round(rng.uniform(0.8, 0.95), 4)}}
            for day in range(1, versions, 2)
        ]  # fmt: skip
        store.write_json(retrains.key(name), {"model": name, "runs": runs}, keep_previous=False)
        for check in range(10):
            drifted = rng.random() < 0.05
            features = [
                {"name": f"f{i}", "drifted": drifted and i == 0, "test": "ks", "p_value": 0.2} for i in range(8)
            ]
            record = {"model": name, "env": "production", "at": stamp(versions + check)[:19] + "Z",
                      "drifted": drifted, "share_drifted": round(rng.uniform(0, 0.3), 4),
                      "verdict": "drift" if drifted else "ok", "rows": 5000, "features": features}  # fmt: skip
            store.write_json(f"monitor/{name}/production/{check:04d}.json", record, keep_previous=False)
    return repo, state


def build_cli(repo: Repo, state: State, out: Path) -> tuple[float, float]:
    """Seconds of one `modelctl dashboard` process (bytecode caching on, as on a developer's machine or a CI
    runner with a cached environment: the first call of a run compiles the imports and is not counted), and the
    CPU seconds it used (about its wall time on an idle machine: the 2 cores here are shared)."""
    env = {**os.environ, "MODELCTL_ROOT": str(repo.root), "MODELCTL_STORE": str(state.root),
           "MODELCTL_STATE_DIR": str(state.root.parent / "runner")}  # fmt: skip
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "modelctl.main", "dashboard", "-o", str(out)],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"modelctl dashboard failed ({done.returncode}):\n{done.stderr}")
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu


def build_in_process(repo: Repo, state: State, out: Path) -> tuple[float, float, int]:
    started = time.perf_counter()
    site = collect(repo, state)
    collected = time.perf_counter()
    built = render(site, out)
    return collected - started, time.perf_counter() - collected, built.pages


def browse(driver: Any, base: str, model: str) -> dict[str, float]:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(base + "index.html")
    timing = browser.first_render_ms(driver)
    timing["filter"] = float(
        driver.execute_script(
            """
            const box = document.getElementById("filter");
            const started = performance.now();
            box.value = "team-3 xgboost";
            box.dispatchEvent(new Event("input"));
            document.body.offsetHeight;  // the layout the new filter needs
            const took = performance.now() - started;
            box.value = "";
            box.dispatchEvent(new Event("input"));
            return took;
            """
        )
    )
    started = time.perf_counter()
    driver.get(base + f"models/{model}.html")
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.charts") == "rendered")
    timing["model_page"] = (time.perf_counter() - started) * 1000
    return timing


def measure(models: int, versions: int, with_browser: bool, keep: Path | None, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-dashboard-") as tmp:
        root = keep / f"{models}x{versions}" if keep else Path(tmp)
        started = time.perf_counter()
        repo, state = generate(root, models, versions, random.Random(seed))
        generated = time.perf_counter() - started
        build_cli(repo, state, root / "site")  # warm-up: bytecode of the imports, the file cache
        cli, cpu = build_cli(repo, state, root / "site")
        collect_s, render_s, pages = build_in_process(repo, state, root / "site")
        size = sum(p.stat().st_size for p in (root / "site").rglob("*") if p.is_file())
        result: dict[str, Any] = {"models": models, "versions": versions, "generated_s": generated, "cli_s": cli,
                                  "cli_cpu_s": cpu,
                                  "collect_s": collect_s, "render_s": render_s, "pages": pages,
                                  "index_kb": (root / "site" / "index.html").stat().st_size / 1024,
                                  "site_mb": size / 1e6}  # fmt: skip
        if with_browser:
            with browser.serve(root / "site") as base, browser.chromium() as driver:
                browse(driver, base, "model_0000")  # warm-up: the browser's own start-up, disk caches
                result.update(browse(driver, base, "model_0000"))
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=50)
    parser.add_argument("--baseline", type=int, default=10, help="models in the baseline measured in the same run")
    parser.add_argument("--no-browser", action="store_true", help="only the build (no Chromium needed)")
    parser.add_argument("--keep", type=Path, help="generate into DIR and keep it (to open the site afterwards)")
    parser.add_argument("--seed", type=int, default=23)
    args = parser.parse_args()
    with_browser = not args.no_browser
    if with_browser and browser.missing_message():
        raise SystemExit(f"{browser.missing_message()} (or --no-browser)")
    results = [measure(n, args.versions, with_browser, args.keep, args.seed) for n in (args.baseline, args.models)]
    base, large = results
    print(f"\n## `modelctl dashboard`: {args.models} models x {args.versions} versions vs {args.baseline} (baseline)\n")
    print("| measure | baseline | large | ratio |")
    print("| --- | --- | --- | --- |")
    rows = [("build, CLI process (s)", "cli_s", 2), ("  its CPU time, user + system (s)", "cli_cpu_s", 2),
            ("  collect, in-process (s)", "collect_s", 2),
            ("  render, in-process (s)", "render_s", 2), ("pages", "pages", 0), ("index.html (KB)", "index_kb", 0),
            ("site incl. plotly.min.js (MB)", "site_mb", 1)]  # fmt: skip
    if with_browser:
        rows += [("overview first contentful paint (ms)", "fcp", 0), ("overview DOMContentLoaded (ms)", "dom", 0),
                 ("overview load event (ms)", "load", 0), ("one filter keystroke over all rows (ms)", "filter", 1),
                 ("model page until charts drawn (ms)", "model_page", 0)]  # fmt: skip
    for label, key, digits in rows:
        ratio = large[key] / base[key] if base[key] else float("nan")
        print(f"| {label} | {base[key]:,.{digits}f} | {large[key]:,.{digits}f} | {ratio:.1f}x |")
    print(
        f"\ngenerating the inputs took {base['generated_s']:.1f}s and {large['generated_s']:.1f}s (not measured above)"
    )
    print(json.dumps({"baseline": base, "large": large}))
    limit = 10.0
    verdict = "under" if large["cli_s"] < limit else "OVER"
    print(
        f"\n{args.models}x{args.versions}: build {large['cli_s']:.1f}s ({large['cli_cpu_s']:.1f}s CPU), {verdict} the "
        f"{limit:.0f}s budget (issue 23.5); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    return 0 if large["cli_s"] < limit else 1


if __name__ == "__main__":
    raise SystemExit(main())
