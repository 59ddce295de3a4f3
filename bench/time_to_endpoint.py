"""Time from `cookiecutter --no-input` of a new model to a deployed, gate-passed local endpoint.

    python bench/time_to_endpoint.py [--framework sklearn] [--skip-tests]

Works in a temporary copy of the monorepo (template, shared/, tox config) with its own state
folder, so nothing here is touched. Package caches should be warm (run `make test` once first):
the point is the platform's own overhead, not download speed. Prints each stage's time and the
total; the goal for the default model is under 90 s on a 2-core machine. Stops what it deployed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling" / "src"), str(ROOT / "shared" / "src")]

from modelctl.commands.pipeline import run_pipeline, summary_table  # noqa: E402
from modelctl.console import out  # noqa: E402
from modelctl.repo import Repo  # noqa: E402
from modelctl.targets import local  # noqa: E402

COPY = ("cookiecutter-model", "shared", "tox.ini", "toxfile.py", "pyproject.toml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--framework", default="sklearn", choices=("sklearn", "xgboost", "lightgbm", "pytorch"))
    parser.add_argument("--skip-tests", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-endpoint-") as tmp:
        root = Path(tmp) / "repo"
        for item in COPY:
            source = ROOT / item
            if source.is_dir():
                shutil.copytree(source, root / item, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                shutil.copy2(source, root / item)
        (root / "models").mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
        os.environ["MODELCTL_STATE_DIR"] = str(root / ".state")
        os.environ.pop("BENTOML_HOME", None)

        started = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "cookiecutter",
                str(root / "cookiecutter-model"),
                "-o",
                "models",
                "--no-input",
                "model_name=Fresh Model",
                f"framework={args.framework}",
            ],
            cwd=root,
            check=True,
            capture_output=True,
        )
        bake = time.monotonic() - started
        config_path = root / "models" / "fresh_model" / "config.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["serving"]["ports"]["staging"] = free_port()  # never collide with a running demo
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        subprocess.run(["git", "add", "-A"], cwd=root, check=True)
        subprocess.run(
            ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "commit", "-qm", "new"],
            cwd=root,
            check=True,
        )
        repo = Repo(root)
        try:
            run = run_pipeline(repo, "fresh_model", "staging", skip_tests=args.skip_tests)
        finally:
            local.undeploy(repo, "fresh_model", "staging")
        total = time.monotonic() - started
    out.print(summary_table(run))
    print(f"\n| stage | seconds |\n| --- | --- |\n| cookiecutter --no-input | {bake:.1f} |")
    for stage in run.stages:
        print(f"| {stage.name} | {stage.seconds:.1f} |")
    print(f"| **total to a live, gate-passed endpoint** | **{total:.1f}** |")
    print(f"\n({args.framework}; model environment creation is part of the first stage that needs it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
