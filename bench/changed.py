"""Benchmark `modelctl changed` on a generated monorepo: 200 models, 1,000 commits.

    python bench/changed.py [--models 200] [--commits 1000] [--repeat 5]

Prints the time of one `changed` call (in-process and as a CLI process) for a one-model change,
a shared/ change and a repo-wide change, and how many models each selects. The CLI runs with
bytecode caching on (as in any normal venv; this machine sets PYTHONDONTWRITEBYTECODE=1) after one
warm-up call. The baseline measured
in the same run is `git diff --name-only` over the same range: the ratio says what the selection
logic costs on top of the one git call it cannot avoid.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling" / "src"), str(ROOT / "shared" / "src")]

from modelctl.commands.changed import compute  # noqa: E402
from modelctl.repo import Repo  # noqa: E402

CONFIG = "name: {name}\ndescription: generated\nowner: bench\nframework: sklearn\n"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def generate(repo: Path, models: int, commits: int, rng: random.Random) -> list[str]:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.com")
    git(repo, "config", "user.name", "bench")
    (repo / "cookiecutter-model").mkdir()
    (repo / "cookiecutter-model" / "cookiecutter.json").write_text("{}\n")
    (repo / "shared").mkdir()
    (repo / "shared" / "lib.py").write_text("x = 0\n")
    (repo / "tooling").mkdir()
    (repo / "tooling" / "cli.py").write_text("")
    names = [f"model_{i:03d}" for i in range(models)]
    for index, name in enumerate(names):
        folder = repo / "models" / name
        (folder / "notebooks").mkdir(parents=True)
        (folder / "config.yaml").write_text(CONFIG.format(name=name))
        uses_shared = "-e ../../shared\n" if index % 2 == 0 else ""
        (folder / "requirements.txt").write_text("bentoml==1.4.40\n" + uses_shared)
        (folder / "train.py").write_text("# 0\n")
        (folder / "notebooks" / "explore.ipynb").write_text("{}\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")
    for number in range(commits - 1):
        name = rng.choice(names)
        target = rng.choice(["train.py", "notebooks/explore.ipynb"])
        path = repo / "models" / name / target
        path.write_text(path.read_text() + f"# {number}\n")
        git(repo, "commit", "-qam", f"change {number}")
    return names


def timed(fn, repeat: int) -> tuple[float, object]:  # noqa: ANN001
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory(prefix="bench-changed-") as tmp:
        repo = Path(tmp)
        start = time.perf_counter()
        names = generate(repo, args.models, args.commits, rng)
        print(f"generated {args.models} models, {args.commits} commits in {time.perf_counter() - start:.1f}s")
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
        first = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
        cases["whole history"] = (first, cases["one model"][1])

        cli_env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cli_cmd = [sys.executable, str(ROOT / "tooling" / "run_modelctl.py"), "changed"]
        subprocess.run([*cli_cmd, "--all"], cwd=repo, capture_output=True, check=True, env=cli_env)
        print("\n| change | selected | in-process | CLI process | git diff alone | ratio |")
        print("| --- | --- | --- | --- | --- | --- |")
        for label, (old, new) in cases.items():
            seconds, selection = timed(lambda old=old, new=new: compute(Repo(repo), old, new), args.repeat)
            cli, _ = timed(
                lambda old=old, new=new: subprocess.run(
                    [*cli_cmd, "--base", old, "--head", new], cwd=repo, capture_output=True, check=True, env=cli_env
                ),
                args.repeat,
            )
            diff, _ = timed(lambda old=old, new=new: git(repo, "diff", "--name-only", old, new), args.repeat)
            count = len(selection.models)  # type: ignore[attr-defined]
            print(
                f"| {label} | {count} | {seconds * 1000:.0f} ms | {cli * 1000:.0f} ms | {diff * 1000:.0f} ms "
                f"| {seconds / diff:.1f}x |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
