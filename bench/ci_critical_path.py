"""The pull-request CI's critical path, before and after the platform suites moved to their own job (issue 19).

    python bench/ci_critical_path.py [--rev HEAD] [--model iris_classifier]

Clones REV into a temporary folder (a fresh clone, as a runner checks it out), runs each step of each
`ci.yml` job there the way a hosted runner would (no global git configuration, an empty HOME, CI=true;
package caches warm, as CI's cache restore leaves them) and times it. From the same step times it
computes the critical path of two pull requests, a model-only change and a platform change, under two
job graphs:

- before: one "lint and unit tests" job ran `tox -e lint,shared,tooling,airflow` on every pull request,
  beside `changes` -> one `model` job per changed model;
- after: `lint` (pre-commit + mypy) on every pull request; `changes` -> `platform` (shared, tooling and
  airflow suites) only when `modelctl changed` says the platform changed, and `model` jobs.

Jobs run in parallel on separate runners, steps in a job one after another, so a path is the longest
chain. The platform job's suites are timed one after another here (2 cores); `tox run-parallel` on a
runner with more cores only shortens it. Every job pays its own `make bootstrap`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IDENTITY = ["-c", "user.name=bench", "-c", "user.email=bench@example.com"]


def runner_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "TOX_", "VIRTUAL_ENV", "MODELCTL_"))}
    env.update(
        CI="true",
        HOME=str(home),
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
        XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")),
    )
    return env


def timed(label: str, argv: list[str], cwd: Path, env: dict[str, str], log: Path) -> float:
    print(f"  {label}: {' '.join(argv)}", flush=True)
    started = time.monotonic()
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n=== {label}: {' '.join(argv)}\n")
        out.flush()
        result = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"{label} failed (exit {result.returncode}); see {log}")
    print(f"    {seconds:7.1f} s", flush=True)
    return seconds


def commit_change(clone: Path, path: str, env: dict[str, str]) -> str:
    """Append a comment to ``path`` and commit it; the base (the commit before) is returned."""
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True, text=True, check=True)
    target = clone / path
    target.write_text(target.read_text(encoding="utf-8") + "# bench: a one-line change\n", encoding="utf-8")
    subprocess.run(
        ["git", *IDENTITY, "commit", "--no-verify", "-qam", f"bench: change {path}"], cwd=clone, env=env, check=True
    )
    return base.stdout.strip()


def outputs_of(clone: Path, base: str, env: dict[str, str], log: Path) -> tuple[dict[str, str], float]:
    output = clone.parent / "github_output"
    output.write_text("", encoding="utf-8")
    argv = [".venv/bin/modelctl", "changed", f"--base={base}", f"--rules-from={base}", "--format", "github"]
    seconds = timed("changes: modelctl changed", argv, clone, {**env, "GITHUB_OUTPUT": str(output)}, log)
    pairs = (line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line)
    return dict(pairs), seconds


def critical_paths(t: dict[str, float], platform: bool) -> dict[str, float]:
    boot = t["bootstrap"]
    changes = boot + t["changes"]
    model = changes + boot + t["model check"]
    suites = t["shared"] + t["tooling"] + t["airflow"]
    before = max(boot + t["lint"] + suites, model)
    after = max(boot + t["lint"], model, changes + boot + suites if platform else 0.0)
    return {"before": before, "after": after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="HEAD", help="the commit to clone and time (default: HEAD)")
    parser.add_argument("--model", default="iris_classifier", help="the model a model-only change touches")
    parser.add_argument("--json", type=Path, help="also write the step times and paths as JSON here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ci-path-") as tmp:
        work = Path(tmp)
        clone, home, log = work / "clone", work / "home", work / "steps.log"
        home.mkdir()
        env = runner_env(home)
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], env=env, check=True)
        subprocess.run(["git", "checkout", "-q", args.rev], cwd=clone, env=env, check=True)
        print(f"fresh clone of {args.rev} in {clone}; log: {log}", flush=True)
        t: dict[str, float] = {}
        t["bootstrap"] = timed("bootstrap", ["make", "bootstrap"], clone, env, log)
        base = commit_change(clone, f"models/{args.model}/train.py", env)
        model_only, t["changes"] = outputs_of(clone, base, env, log)
        base = commit_change(clone, "tooling/src/modelctl/__init__.py", env)
        platform_change, _ = outputs_of(clone, base, env, log)
        assert model_only["platform"] == "false" and json.loads(model_only["models"]) == [args.model], model_only
        assert platform_change["platform"] == "true", platform_change
        t["lint"] = timed("lint", [".venv/bin/tox", "run", "-e", "lint"], clone, env, log)
        t["model check"] = timed(
            "model", [".venv/bin/modelctl", "ci", "check", f"--models={args.model}"], clone, env, log
        )
        for suite in ("shared", "tooling", "airflow"):
            t[suite] = timed(f"platform: {suite}", [".venv/bin/tox", "run", "-e", suite], clone, env, log)
        paths = {"model-only change": critical_paths(t, False), "platform change": critical_paths(t, True)}

    print("\nstep times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t.items()))
    print(f"\n{'pull request':<20} {'before (s)':>11} {'after (s)':>10} {'ratio':>7}")
    for name, path in paths.items():
        print(f"{name:<20} {path['before']:>11.1f} {path['after']:>10.1f} {path['after'] / path['before']:>7.2f}")
    if args.json:
        args.json.write_text(json.dumps({"steps": t, "paths": paths}, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
