"""`modelctl validate [MODEL...]`: check models' config.yaml against the schema, and against each other."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import err, out
from modelctl.errors import UsageError
from modelctl.ports import port_clashes
from modelctl.repo import Repo, find_repo
from modelkit import ConfigError, ModelConfig, load_config


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "validate",
        help="validate models' config.yaml (all models when none are named)",
        description="Exit 0 when valid, 1 when a config has invalid values or two models share a port, 2 for an "
        "unknown model, a missing file or malformed YAML.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help="model names (default: all)")
    parser.add_argument(
        "--files", nargs="+", type=Path, metavar="CONFIG", help="validate these config.yaml paths (pre-commit)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="print only problems")
    parser.set_defaults(run=lambda a: validate(find_repo(), a.models, a.files, a.quiet))


def validate(repo: Repo, models: list[str], files: list[Path] | None = None, quiet: bool = False) -> int:
    paths = [p.resolve() for p in files] if files else [repo.model_dir(n) / "config.yaml" for n in repo.resolve(models)]
    invalid = 0
    valid: dict[Path, ModelConfig] = {}
    for path in paths:
        try:
            valid[path] = load_config(path, check_folder_name=True)
        except ConfigError as exc:
            first = exc.problems[0].message
            if first == "file not found" or first.startswith(("invalid YAML", "cannot be read")):
                raise UsageError(str(exc.problems[0])) from exc
            invalid += 1
            for problem in exc.problems:
                err.print(str(problem), markup=False)
            continue
        if not quiet:
            out.print(f"ok  {path}", markup=False)
    clashes = port_clashes(repo, valid)
    for clash in clashes:
        err.print(clash, markup=False)
    if invalid or clashes:
        summary = [f"{invalid} of {len(paths)} config(s) invalid"] if invalid else []
        summary += [f"{len(clashes)} port clash(es)"] if clashes else []
        err.print("; ".join(summary), markup=False)
        return 1
    if quiet:
        out.print(f"{len(paths)} config(s) valid", markup=False)
    return 0
