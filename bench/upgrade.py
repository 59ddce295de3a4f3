"""Benchmark `modelctl upgrade --all` on a generated monorepo of baked models (issue 12.5: under 60 s for 200).

    python bench/upgrade.py [--models 200] [--keep DIR] [--template DIR]

Bakes N models from this checkout's template (frameworks and tasks mixed, each with its
`.template.json`), commits, changes the template as a fix would (a line in service.py, a new file,
a changed default in config.yaml, a removed file), edits half of the models (train.py, and a line of
config.yaml the template does not touch, so git merge-file runs), commits, and times three CLI runs:

1. `upgrade --all` after the template fix (only the changed template files are re-baked per model);
2. the same command again (a no-op: every record is current);
3. `upgrade --all` after a cookiecutter.json change (a new question, read by README.md): only the
   files that read a changed answer are re-baked;
4. `upgrade --all` after a change under the template's templates/ folder (Jinja's include path):
   the worst case, every file of both template versions baked for every model.

Each run is a fresh `modelctl` process, as a person or CI runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tooling" / "src"), str(ROOT / "shared" / "src")]

from modelctl.upgrade import RECORD_FILE, render_context, template_imports  # noqa: E402
from modelkit import FRAMEWORKS  # noqa: E402 - every framework the schema knows

PROJECT = "{{cookiecutter.model_slug}}"
TASKS = ("classification", "regression")
ENV = {
    **os.environ,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.com",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.com",
    "PYTHONPATH": os.pathsep.join([str(ROOT / "tooling" / "src"), str(ROOT / "shared" / "src")]),
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, capture_output=True, text=True, check=True).stdout


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)


def generate(repo: Path, count: int, source: Path) -> list[str]:
    from cookiecutter.generate import generate_files

    template = repo / "cookiecutter-model"
    shutil.copytree(source, template, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "models").mkdir()
    git(repo, "init", "-q", "-b", "main")
    commit(repo, "template")
    tree = git(repo, "rev-parse", "HEAD:cookiecutter-model").strip()
    head = git(repo, "rev-parse", "HEAD").strip()
    slugs = []
    for index in range(count):
        answers = {
            "model_name": f"Model {index:03d}",
            "model_slug": f"model_{index:03d}",
            "description": f"Generated model number {index}.",
            "owner": f"team-{index % 7}",
            "framework": FRAMEWORKS[index % len(FRAMEWORKS)],
            "task": TASKS[(index // len(FRAMEWORKS)) % len(TASKS)],
        }
        with template_imports(template):  # the template's Jinja extension, if it has one
            context = render_context(template, answers)
            folder = Path(generate_files(str(template), context, str(repo / "models"), accept_hooks=False))
        record = {"template": "cookiecutter-model", "template_tree": tree, "template_commit": head, "answers": answers}
        (folder / RECORD_FILE).write_text(json.dumps(record, indent=2) + "\n")
        slugs.append(folder.name)
    commit(repo, f"{count} models")
    return slugs


def change_template(repo: Path) -> None:
    template = repo / "cookiecutter-model" / PROJECT
    service = template / "service.py"
    service.write_text(service.read_text() + "\n# template fix\n")
    (template / "CHANGELOG.md").write_text("# Changes to {{ cookiecutter.model_name }}\n")
    config = template / "config.yaml"
    # the first integer default of a section (not the ports, which are each model's own)
    default = re.compile(r"^(?P<lead>[ ]+(?!ports\b)\w+: )(?P<value>\d+)\b", re.MULTILINE)
    config.write_text(default.sub(lambda m: f"{m['lead']}{int(m['value']) + 1}", config.read_text(), count=1))
    (template / "queries" / "training.sql").unlink()
    commit(repo, "template fix")


def edit_models(repo: Path, slugs: list[str]) -> None:
    for slug in slugs[::2]:
        folder = repo / "models" / slug
        train = folder / "train.py"
        train.write_text(train.read_text() + "\n# the model team's line\n")
        config = folder / "config.yaml"
        config.write_text(re.sub(r"^description: .*$", 'description: "Edited."', config.read_text(), flags=re.M))
    commit(repo, "model edits")


def add_question(repo: Path) -> None:
    path = repo / "cookiecutter-model" / "cookiecutter.json"
    data = json.loads(path.read_text())
    data["licence"] = "Apache-2.0"
    path.write_text(json.dumps(data, indent=2) + "\n")
    readme = repo / "cookiecutter-model" / PROJECT / "README.md"
    readme.write_text(readme.read_text() + "\nLicence: {{ cookiecutter.licence }}\n")
    commit(repo, "licence question")


def add_include_folder(repo: Path) -> None:
    (repo / "cookiecutter-model" / "templates").mkdir()
    (repo / "cookiecutter-model" / "templates" / "notice.j2").write_text("Baked by {{ cookiecutter.owner }}\n")
    commit(repo, "templates/ folder")


def upgrade_all(repo: Path) -> tuple[float, int, str]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "modelctl.main", "upgrade", "--all"],
        cwd=repo,
        env=ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    return time.perf_counter() - start, result.returncode, result.stdout + result.stderr


def summary(output: str) -> str:
    statuses = re.findall(r"^model_\d+\s+(up to date|upgraded|conflicts \(\d+ files?\)|refused|error)", output, re.M)
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no summary"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="build the monorepo here and keep it (default: a temp folder)")
    parser.add_argument("--template", type=Path, default=ROOT / "cookiecutter-model", help="the template to bake")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upgrade-") as tmp:
        repo = args.keep or Path(tmp) / "repo"
        repo.mkdir(parents=True)
        start = time.perf_counter()
        slugs = generate(repo, args.models, args.template.resolve())
        change_template(repo)
        edit_models(repo, slugs)
        print(f"generated {len(slugs)} models ({', '.join(FRAMEWORKS)}) in {time.perf_counter() - start:.1f} s")
        failed = False
        scenarios = {
            "template fix": None,
            "second run (no-op)": None,
            "new question in cookiecutter.json": add_question,
            "templates/ change (full re-bake)": add_include_folder,
        }
        for label, change in scenarios.items():
            if change is not None:
                change(repo)
            seconds, code, output = upgrade_all(repo)
            print(
                f"{label:<36} {seconds:6.1f} s total, {1000 * seconds / len(slugs):5.0f} ms per model, "
                f"exit {code}: {summary(output)}"
            )
            failed |= code != 0
            if code != 0:
                print(output[-3000:])
            commit(repo, f"after {label}")
        print("goal: under 60 s for 200 models on a 2-core machine")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
