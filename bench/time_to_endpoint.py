"""Time from `cookiecutter --no-input` of a new model to a deployed, gate-passed local endpoint.

    python bench/time_to_endpoint.py [--framework sklearn] [--skip-tests] [--against REV] [--rounds 1]

Each run works in a temporary monorepo copied from a tree (template, shared/, tooling, tox config) with its
own state folder, bakes a fresh model with plain cookiecutter, commits it (with an identity given on the
command line: no global git config is needed) and runs that tree's `modelctl pipeline MODEL` as a process,
so whatever the tree does is what is timed. Package caches should be warm (run `make test` once first): the
point is the platform's own overhead, not download speed.

With ``--against REV`` a git worktree of REV is timed too, alternately with this tree (A B A B ...), and
the ratio of medians (this tree / REV) is printed: below 1.0 is faster. Stops whatever it deployed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelkit import FRAMEWORKS

ROOT = Path(__file__).resolve().parents[1]
COPY = (
    "cookiecutter-model",
    "shared",
    "tooling/src",
    "tooling/run_modelctl.py",
    "tox.ini",
    "toxfile.py",
    "pyproject.toml",
)
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]
LIVE_AFTER = re.compile(r"live after ([0-9.]+)s")
STAGE_ROW = re.compile(
    r"^[│|]\s*(?P<stage>[a-z][a-z -]+?)\s*[│|]\s*(?P<status>ok|skipped)\s*[│|]\s*(?P<s>[0-9.]+)\s*[│|]"
)


@dataclass
class Run:
    tree: str
    seconds: float  # cookiecutter to a live, gate-passed endpoint
    bake: float
    stages: dict[str, float] = field(default_factory=dict)
    command: float = 0.0  # the whole pipeline command (a post-deploy watch runs after the endpoint is live)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_once(tree: Path, label: str, framework: str, skip_tests: bool) -> Run:
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        root = Path(tmp) / "repo"
        for item in COPY:
            source = tree / item
            if source.is_dir():
                shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            elif source.exists():
                (root / item).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, root / item)
        (root / "models").mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
        subprocess.run(["git", *IDENTITY, "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", *IDENTITY, "commit", "-qm", "platform"], cwd=root, check=True)
        env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MODELCTL_ROOT", "SLACK_WEBHOOK_URL")}
        env.update(
            MODELCTL_STATE_DIR=str(root / ".state"),
            PYTHONPATH=f"{root / 'tooling' / 'src'}{os.pathsep}{root / 'shared' / 'src'}",
        )
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "cookiecutter", str(root / "cookiecutter-model"), "-o", "models", "--no-input",
             "model_name=Fresh Model", f"framework={framework}"],
            cwd=root, check=True, capture_output=True, env=env,
        )  # fmt: skip
        bake = time.monotonic() - started
        config_path = root / "models" / "fresh_model" / "config.yaml"
        config = yaml.safe_load(config_path.read_text())
        config.setdefault("serving", {}).setdefault("ports", {})
        config["serving"]["ports"].update(dev=free_port(), staging=free_port(), production=free_port())
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        subprocess.run(["git", *IDENTITY, "add", "-A"], cwd=root, check=True)
        subprocess.run(["git", *IDENTITY, "commit", "-qm", "new model"], cwd=root, check=True)
        modelctl = [sys.executable, "-m", "modelctl.main"]
        command = [*modelctl, "pipeline", "fresh_model", "--env", "staging"] + (["--skip-tests"] if skip_tests else [])
        try:
            result = subprocess.run(command, cwd=root, capture_output=True, text=True, env=env, check=False)
        finally:
            subprocess.run([*modelctl, "undeploy", "fresh_model", "--env", "staging"], cwd=root, env=env,
                           capture_output=True, check=False)  # fmt: skip
        total = time.monotonic() - started
        if result.returncode != 0:
            raise SystemExit(
                f"{label}: pipeline failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        stages = {m["stage"].strip(): float(m["s"]) for m in map(STAGE_ROW.match, result.stdout.splitlines()) if m}
        # A tree whose pipeline watches the new version says when it went live; before the watch existed the
        # endpoint was live when the command ended.
        live = LIVE_AFTER.search(result.stdout)
        to_live = bake + float(live.group(1)) if live else total
        return Run(label, to_live, bake, stages, command=total)


def worktree(rev: str, into: Path) -> Path:
    target = into / "against"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(target), rev], cwd=ROOT, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="sklearn", choices=FRAMEWORKS)
    parser.add_argument("--skip-tests", action="store_true")
    parser.add_argument("--against", metavar="REV", help="also time a git worktree of REV, alternately")
    parser.add_argument("--rounds", type=int, default=1, help="runs per tree (alternating)")
    args = parser.parse_args()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-against-") as tmp:
        other = worktree(args.against, Path(tmp)) if args.against else None
        try:
            for round_number in range(1, args.rounds + 1):
                trees = [("this tree", ROOT)] + ([(args.against, other)] if other else [])
                for label, tree in trees:
                    print(f"round {round_number}: {label} ...", file=sys.stderr, flush=True)
                    runs.append(run_once(tree, label, args.framework, args.skip_tests))
                    print(f"  {runs[-1].seconds:.1f}s", file=sys.stderr, flush=True)
        finally:
            if other is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    labels = list(dict.fromkeys(r.tree for r in runs))
    stage_names = list(dict.fromkeys(s for r in runs for s in r.stages))
    print(f"\n| stage | {' | '.join(labels)} |\n| --- |" + " --- |" * len(labels))
    print("| cookiecutter --no-input | " + " | ".join(f"{median(runs, t, 'bake'):.1f}" for t in labels) + " |")
    for stage in stage_names:
        cells = [statistics.median([r.stages.get(stage, 0.0) for r in runs if r.tree == t]) for t in labels]
        print(f"| {stage} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
    totals = [median(runs, t, "seconds") for t in labels]
    print(
        "| **total to a live, gate-passed endpoint (wall clock)** | "
        + " | ".join(f"**{t:.1f}**" for t in totals)
        + " |"
    )
    if len(totals) == 2:
        print(f"\nratio this tree / {labels[1]}: {totals[0] / totals[1]:.2f} (median of {args.rounds} run(s) each)")
    print(f"\n({args.framework}; stage times are each tree's own table; tests may run beside other stages)")
    return 0


def median(runs: list[Run], tree: str, attribute: str) -> float:
    return statistics.median(float(getattr(r, attribute)) for r in runs if r.tree == tree)


if __name__ == "__main__":
    raise SystemExit(main())
