"""`modelctl build MODEL`: build a bento offline from the model folder and its latest trained model."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from dataclasses import dataclass

from modelctl.console import err, out
from modelctl.envs import model_python, runtime_script
from modelctl.errors import ModelctlError
from modelctl.git import git
from modelctl.repo import Repo, find_repo
from modelctl.state import State

BUILD_DIR = "modelctl-build"  # not hidden: bentoml refuses files under dot-folders


class BuildError(ModelctlError):
    pass


@dataclass(frozen=True)
class Built:
    bento: str
    model_tag: str


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("build", help="build a bento (offline, pinned requirements, shared/ as a wheel)")
    parser.add_argument("model")
    parser.set_defaults(run=lambda a: build(find_repo(), a.model))


def bento_requirements(requirements: str) -> str:
    """The model's requirements without local paths: inside a bento, shared/ comes as a wheel instead."""
    kept = []
    for line in requirements.splitlines():
        stripped = line.strip()
        if stripped.startswith(("-e ", "--editable ", ".", "/")):
            continue
        kept.append(line)
    return "\n".join(kept) + "\n"


def commit_of(repo: Repo) -> str:
    result = git(repo.root, "rev-parse", "--short=12", "HEAD", check=False)
    return result.stdout.strip() or "unknown"


def run_build(repo: Repo, model: str) -> Built:
    repo.resolve([model])
    config = repo.config(model)
    python = model_python(repo, model)
    model_dir = repo.model_dir(model)
    work = model_dir / BUILD_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    from uv import find_uv_bin  # here, not at import: the pre-commit hook env has no uv

    try:
        wheel = subprocess.run(
            [find_uv_bin(), "build", "--wheel", "--out-dir", str(work), str(repo.root / "shared")],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = sorted(work.glob("modelkit-*.whl"))
        if wheel.returncode != 0 or not wheels:
            raise BuildError(f"building the shared/ wheel failed: {wheel.stderr.strip()[-500:]}")
        requirements = work / "requirements.txt"
        requirements.write_text(bento_requirements((model_dir / "requirements.txt").read_text()))
        spec = work / "spec.json"
        spec.write_text(
            json.dumps(
                {
                    "name": config.name,
                    "labels": {"git_commit": commit_of(repo), "owner": config.owner, "framework": config.framework},
                    # bentoml refuses absolute paths here: relative to the build context (the model folder)
                    "requirements_txt": str(requirements.relative_to(model_dir)),
                    "wheels": [str(w.relative_to(model_dir)) for w in wheels],
                }
            )
        )
        result = subprocess.run(
            [str(python), str(runtime_script("build_bento.py")), str(spec)],
            cwd=model_dir,
            env=State.of(repo).env(),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode == 4:
        raise BuildError(result.stderr.strip().splitlines()[-1].removeprefix("NO_MODEL: "))
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no output)"]
        tail = "\n".join(lines[-15:])
        raise BuildError(f"bentoml build of {model} failed: {lines[-1]}\n{tail}")
    data = json.loads(result.stdout.strip().splitlines()[-1])
    return Built(data["bento"], data["model"])


def build(repo: Repo, model: str) -> int:
    built = run_build(repo, model)
    out.print(built.bento, markup=False)
    err.print(f"model {built.model_tag}", markup=False)
    return 0
