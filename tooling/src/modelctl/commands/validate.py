"""`modelctl validate [MODEL...]`: check models' config.yaml against the schema."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import err, out
from modelctl.errors import UsageError
from modelctl.repo import Repo, find_repo
from modelkit import ConfigError, load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate models' config.yaml (all models when none are named)",
        description="Exit 0 when valid, 1 when a config has invalid values, 2 for an unknown model, "
        "a missing file or malformed YAML.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="model names (default: all)")
    parser.add_argument(
        "--files", nargs="+", type=Path, metavar="CONFIG", help="validate these config.yaml paths (pre-commit)"
    )
    parser.set_defaults(run=lambda a: validate(find_repo(), a.models, a.files))


def validate(repo: Repo, models: list[str], files: list[Path] | None = None) -> int:
    paths = list(files) if files else [repo.model_dir(name) / "config.yaml" for name in repo.resolve(models)]
    invalid = 0
    for path in paths:
        try:
            load_config(path, check_folder_name=True)
        except ConfigError as exc:
            first = exc.problems[0].message
            if first == "file not found" or first.startswith(("invalid YAML", "cannot be read")):
                raise UsageError(str(exc.problems[0])) from exc
            invalid += 1
            for problem in exc.problems:
                err.print(str(problem), markup=False)
            continue
        out.print(f"ok  {path}", markup=False)
    if invalid:
        err.print(f"{invalid} of {len(paths)} config(s) invalid", markup=False)
        return 1
    return 0
