"""Benchmark the commands that read every model: `changed`, `list`, `validate`, on generated monorepos.

    python bench/changed.py [--models 300 1000] [--commits 300] [--repeat 3]

For each size: a repository of N models (real configs: the example's, renamed, each with its own ports;
half use shared/) with a history of commits, then the time of one CLI call of `modelctl list`,
`modelctl validate` and `modelctl changed` (a one-model change, a shared/ change, a repo-wide change),
the number of models each change selects and the number of CI jobs its GitHub matrix gets (GitHub's
limit is 256 per run). Baseline measured in the same run: `git diff --name-only` of the same range, and
`python -c pass` (interpreter start-up); ratios are against them. CLI processes run with bytecode caching
on, after a warm-up call.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from modelkit import FRAMEWORKS  # every framework the schema knows

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
CONFIG = """name: {name}
description: A generated model for the benchmark.
owner: bench
framework: {framework}
task: classification
serving:
  batching: {{enabled: true}}
  ports: {{dev: {dev}, staging: {staging}, production: {production}}}
loadtest: {{max_p90_ms: 500, max_error_rate: 0.01}}
retrain: {{schedule: "0 3 * * 1"}}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *IDENTITY, *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def generate(repo: Path, models: int, commits: int, rng: random.Random) -> list[str]:
    git(repo, "init", "-q", "-b", "main")
    for folder in ("cookiecutter-model", "shared", "tooling"):
        (repo / folder).mkdir()
    (repo / "cookiecutter-model" / "cookiecutter.json").write_text("{}\n")
    (repo / "shared" / "lib.py").write_text("x = 0\n")
    (repo / "tooling" / "cli.py").write_text("")
    (repo / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())
    names = [f"model_{i:04d}" for i in range(models)]
    for index, name in enumerate(names):
        folder = repo / "models" / name
        (folder / "notebooks").mkdir(parents=True)
        base = 3000 + 10 * index
        framework = FRAMEWORKS[index % len(FRAMEWORKS)]
        (folder / "config.yaml").write_text(
            CONFIG.format(name=name, framework=framework, dev=base, staging=base + 1, production=base + 2)
        )
        uses_shared = "-e ../../shared\n" if index % 2 == 0 else ""
        (folder / "requirements.txt").write_text("bentoml==1.4.40\n" + uses_shared)
        (folder / "train.py").write_text("# 0\n")
        (folder / "notebooks" / "explore.ipynb").write_text("{}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    for number in range(commits - 1):
        path = repo / "models" / rng.choice(names) / rng.choice(["train.py", "notebooks/explore.ipynb"])
        path.write_text(path.read_text() + f"# {number}\n")
        git(repo, "commit", "-qam", f"change {number}")
    return names


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(size: int, commits: int, repeat: int, rng: random.Random) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-changed-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        start = time.perf_counter()
        names = generate(repo, size, commits, rng)
        print(f"\n## {size} models ({commits} commits, generated in {time.perf_counter() - start:.1f}s)\n")
        cases = {}
        base = git(repo, "rev-parse", "HEAD").strip()
        (repo / "models" / names[7] / "train.py").write_text("# one model\n")
        git(repo, "commit", "-qam", "one model")
        cases["one model"] = (base, git(repo, "rev-parse", "HEAD").strip())
        base = cases["one model"][1]
        (repo / "shared" / "lib.py").write_text("x = 1\n")
        git(repo, "commit", "-qam", "shared")
        cases["shared/"] = (base, git(repo, "rev-parse", "HEAD").strip())
        base = cases["shared/"][1]
        (repo / "tooling" / "cli.py").write_text("# changed\n")
        git(repo, "commit", "-qam", "tooling")
        cases["repo-wide"] = (base, git(repo, "rev-parse", "HEAD").strip())

        output = Path(tmp) / "github_output"
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            GITHUB_OUTPUT=str(output),
            PYTHONPATH=f"{ROOT / 'tooling' / 'src'}{os.pathsep}{ROOT / 'shared' / 'src'}",
            MODELCTL_ROOT=str(repo),
        )
        cli = [sys.executable, "-m", "modelctl.main"]

        def call(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([*cli, *args], cwd=repo, capture_output=True, text=True, check=True, env=env)

        call("list", "--json")  # warm-up: bytecode caches
        startup = timed(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True, env=env), repeat)
        print("| command | selected | CI jobs | CLI time | git diff alone | vs interpreter start-up |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, args in (("list", ("list", "--json")), ("validate", ("validate", "--quiet"))):
            seconds = timed(lambda args=args: call(*args), repeat)
            print(f"| `{label}` | {size} | - | {seconds * 1000:.0f} ms | - | {seconds / startup:.1f}x |")
        for label, (old, new) in cases.items():
            output.write_text("")
            seconds = timed(
                lambda old=old, new=new: call("changed", "--base", old, "--head", new, "--format", "github"), repeat
            )
            outputs = dict(line.split("=", 1) for line in output.read_text().splitlines())
            diff = timed(lambda old=old, new=new: git(repo, "diff", "--name-only", old, new), repeat)
            selected = outputs["model_count"]
            jobs = len(json.loads(outputs["matrix"])["include"])
            print(
                f"| `changed` ({label}) | {selected} | {jobs} | {seconds * 1000:.0f} ms | {diff * 1000:.0f} ms "
                f"| {seconds / startup:.1f}x |"
            )
        print(f"\ninterpreter start-up (`python -c pass`): {startup * 1000:.0f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for size in args.models:
        bench(size, args.commits, args.repeat, random.Random(size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
