"""`modelctl lock MODEL...|--all [--check]`: pin each model environment's whole dependency set with hashes."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from modelctl import requirements
from modelctl.console import err, out
from modelctl.envs import installer_env
from modelctl.errors import UsageError
from modelctl.lockfile import SOURCE, LockError, make, status
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "lock",
        help="write models/<name>/requirements.lock: every package of the environment pinned with its hashes",
        description="Resolves requirements-dev.txt and writes requirements.lock, which the model's environment is "
        "installed from (hash-checked). --check writes nothing: exit 1 when a lock is missing or out of date.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL")
    parser.add_argument("--all", action="store_true", help="every model of the repository")
    parser.add_argument("--check", action="store_true", help="only check that each lock is there and current")
    parser.add_argument(
        "--files", nargs="+", type=Path, metavar="PATH", help="the models these changed files belong to (pre-commit)"
    )
    parser.set_defaults(run=lambda a: lock(find_repo(), a.models, a.all, a.check, a.files))


def models_of(repo: Repo, files: list[Path]) -> list[str]:
    """The models whose lock a change of ``files`` may leave stale: a model's own files, or every model for a
    change of a shared project's pyproject.toml."""
    changed = {path.resolve() for path in files}
    if any(path.is_relative_to(repo.root / "shared") for path in changed):
        return [m.name for m in repo.models()]
    names: set[str] = set()
    for name in repo.model_names():
        folder = repo.model_dir(name).resolve()
        if any(path.is_relative_to(folder) for path in changed):
            names.add(name)
            continue
        try:  # a model whose requirements include a changed file of another folder (`-r ../other/...`)
            read = {line.source for line in requirements.read(folder / SOURCE)}
        except (OSError, ValueError):
            continue
        if read & changed:
            names.add(name)
    return sorted(names)


def lock(repo: Repo, models: list[str], every: bool, check: bool, files: list[Path] | None = None) -> int:
    if files is not None:
        models = models_of(repo, files)
        if not models:
            return 0
    elif bool(models) == every:
        raise UsageError("name the models to lock, or --all")
    names = repo.resolve(models) if models else [m.name for m in repo.models()]
    if check:
        problems = [s for s in (status(repo.model_dir(n)) for n in names) if s.state != "current"]
        for problem in problems:
            err.print(problem.message, markup=False)
        if not problems:
            out.print(f"{len(names)} lock(s) current", markup=False)
        return 1 if problems else 0
    from uv import find_uv_bin

    env = installer_env()
    failed = 0
    for name in names:
        started = time.monotonic()
        out.print(f"locking {name} ...", markup=False)
        try:
            made = make(repo.model_dir(name), str(find_uv_bin()), env)
        except LockError as exc:
            failed += 1
            err.print(f"error: {exc}", markup=False)
            continue
        out.print(f"{made.message} ({time.monotonic() - started:.1f} s)", markup=False)
    return 1 if failed else 0
