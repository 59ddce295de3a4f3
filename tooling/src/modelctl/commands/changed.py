"""`modelctl changed`: the models a range of commits affects (the CI matrix), and why."""

from __future__ import annotations

import argparse
import json
import os
import tomllib
from pathlib import Path

import yaml
from pydantic import ValidationError

from modelctl import git
from modelctl.changes import DEFAULT_REPO_WIDE, ModelInputs, Selection, select, select_all, uses_shared
from modelctl.console import err
from modelctl.errors import UsageError
from modelctl.repo import Repo, find_repo
from modelkit import ModelConfig

FORMATS = ("lines", "json", "github")
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "changed",
        help="list the models a range of commits affects (what CI tests, builds and deploys)",
        description="Notices go to stderr; with --format lines stdout has only model names.",
    )
    parser.add_argument("--base", default="", help="base ref (PR base or the commit before a push)")
    parser.add_argument("--head", default="HEAD", help="head ref (default: HEAD)")
    parser.add_argument("--format", choices=FORMATS, default="lines")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--all", action="store_true", help="select every model")
    group.add_argument("--models", help="select exactly these models (comma-separated)")
    parser.set_defaults(
        run=lambda a: changed(find_repo(), a.base, a.head, a.format, select_every=a.all, models=a.models)
    )


def repo_wide_paths(repo: Repo) -> tuple[str, ...]:
    """`[tool.modelctl] repo_wide_paths` in the root pyproject.toml: the one place the list lives."""
    path = repo.root / "pyproject.toml"
    if not path.is_file():
        return DEFAULT_REPO_WIDE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from exc
    configured = data.get("tool", {}).get("modelctl", {}).get("repo_wide_paths", DEFAULT_REPO_WIDE)
    if not isinstance(configured, list | tuple) or not all(isinstance(p, str) for p in configured):
        raise UsageError(f"{path}: tool.modelctl.repo_wide_paths must be a list of path strings")
    return tuple(configured)


def models_at(repo: Repo, rev: str) -> list[str]:
    paths = git.list_tree(repo.root, rev, "models")
    return sorted({p.split("/")[1] for p in paths if p.count("/") == 2 and p.endswith("/config.yaml")})


def model_inputs(repo: Repo, rev: str, names: list[str]) -> dict[str, ModelInputs]:
    """Each model's ignore globs, extra paths and shared/ use, read at ``rev`` in one git call."""
    wanted = [f"models/{n}/{f}" for n in names for f in ("config.yaml", "requirements.txt")]
    blobs = git.read_blobs(repo.root, rev, wanted)
    inputs: dict[str, ModelInputs] = {}
    for name in names:
        ci = ModelConfig.model_fields["ci"].default
        try:
            data = yaml.load(blobs.get(f"models/{name}/config.yaml", ""), Loader=_Loader)  # noqa: S506 - safe loader
            ci = ModelConfig.model_validate(data).ci
        except (yaml.YAMLError, ValidationError, TypeError):
            err.print(
                f"notice: models/{name}/config.yaml at {rev[:12]} is invalid; using default ci rules", markup=False
            )
        inputs[name] = ModelInputs(
            name=name,
            ignore=tuple(ci.ignore),
            extra_paths=tuple(ci.extra_paths),
            uses_shared=uses_shared(blobs.get(f"models/{name}/requirements.txt", "")),
        )
    return inputs


def compute(repo: Repo, base: str, head: str, select_every: bool = False, models: str | None = None) -> Selection:
    head_sha = git.resolve(repo.root, head)
    if head_sha is None:
        raise UsageError(f"--head {head!r} is not a commit in {repo.root}")
    head_models = models_at(repo, head_sha)
    if models is not None:
        names = [m.strip() for m in models.split(",") if m.strip()]
        unknown = [n for n in names if n not in head_models]
        if unknown:
            raise UsageError(f"unknown model {unknown[0]!r} in --models; known: {', '.join(head_models) or 'none'}")
        return Selection(models=sorted(set(names)), reasons={n: ["named with --models"] for n in sorted(set(names))})
    if select_every:
        return select_all(head_models, "--all")
    base_sha = git.resolve(repo.root, base)
    if base_sha is None:
        why = (
            "no --base given"
            if not base
            else "--base is all zeros (first push or new branch)"
            if set(base) == {"0"}
            else f"--base {base!r} is not a known commit here (force push or shallow clone?)"
        )
        err.print(f"notice: {why}: selecting every model", markup=False)
        selection = select_all(head_models, f"{why}: every model is selected")
        selection.template = True
        return selection
    changed_paths = [path for _, path in git.changed_files(repo.root, base_sha, head_sha)]
    return select(
        changed_paths, model_inputs(repo, head_sha, head_models), models_at(repo, base_sha), repo_wide_paths(repo)
    )


def changed(
    repo: Repo, base: str, head: str = "HEAD", fmt: str = "lines", select_every: bool = False, models: str | None = None
) -> int:
    selection = compute(repo, base, head, select_every, models)
    for name, why in selection.reasons.items():
        err.print(f"{name}: {'; '.join(why)}", markup=False)
    for name in selection.removed:
        err.print(f"{name}: removed in this range (undeploy, never built)", markup=False)
    if selection.template:
        err.print("template: cookiecutter-model/ changed", markup=False)
    if fmt == "lines":
        for name in selection.models:
            print(name)
    elif fmt == "json":
        print(json.dumps(selection.as_dict(), indent=2))
    else:
        write_github_output(selection)
    return 0


def write_github_output(selection: Selection) -> None:
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError("--format github needs $GITHUB_OUTPUT (set by GitHub Actions)")
    lines = {
        "matrix": json.dumps({"model": selection.models}),
        "count": str(len(selection.models)),
        "models": json.dumps(selection.models),
        "removed": json.dumps(selection.removed),
        "removed_count": str(len(selection.removed)),
        "template": "true" if selection.template else "false",
    }
    with Path(target).open("a", encoding="utf-8") as handle:
        for key, value in lines.items():
            handle.write(f"{key}={value}\n")
    print(json.dumps(selection.as_dict()))
