"""`modelctl export MODEL --out FILE`: a gate-passed bento as a file, with its sha256 and gate summary."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import out
from modelctl.delivery import release
from modelctl.delivery.candidate import resolve_bento
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "export", help="export a gate-passed bento to a file; prints its sha256 (deploy it with --sha256)"
    )
    parser.add_argument("model")
    parser.add_argument("--bento", help="bento tag (default: the newest built)")
    parser.add_argument("--out", type=Path, required=True, help="output file, e.g. dist/model.bento")
    parser.set_defaults(run=lambda a: export(find_repo(), a.model, a.bento, a.out))


def export(repo: Repo, name: str, bento: str | None, out_path: Path) -> int:
    model = repo.model(name)
    path, digest = release.export(model, resolve_bento(model, bento), out_path)
    out.print(f"{path} sha256={digest}", markup=False)
    out.print(f"deploy: modelctl deploy {name} --env ENV --bento-file {path} --sha256 {digest}", markup=False)
    return 0
