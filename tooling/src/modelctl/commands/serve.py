"""`modelctl serve MODEL`: serve a built bento (or the model folder) on 127.0.0.1 in the foreground."""

from __future__ import annotations

import argparse
import subprocess

from modelctl import bentos
from modelctl.console import err
from modelctl.envs import model_python
from modelctl.repo import Repo, find_repo
from modelctl.state import State


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="serve a model on 127.0.0.1 in the foreground (Ctrl-C stops it)")
    parser.add_argument("model")
    parser.add_argument("--bento", help="bento tag (default: the newest built; the model folder when none is)")
    parser.add_argument("--port", type=int, help="port (default: serving.ports.dev)")
    parser.set_defaults(run=lambda a: serve(find_repo(), a.model, a.bento, a.port))


def serve(repo: Repo, model: str, bento: str | None, port: int | None) -> int:
    repo.resolve([model])
    config = repo.config(model)
    port = port or config.port("dev")
    python = model_python(repo, model)
    target = bento or bentos.latest_bento(repo, model)
    if target is None:
        service = next(
            line.split()[1].split(":")[0].split("(")[0]
            for line in (repo.model_dir(model) / "service.py").read_text().splitlines()
            if line.startswith("class ")
        )
        target = f"service:{service}"
        err.print(f"no bento built; serving the model folder ({target})", markup=False)
    err.print(f"serving {target} on http://127.0.0.1:{port} (Ctrl-C to stop)", markup=False)
    return subprocess.run(
        bentos.serve_command(python, target, port), cwd=repo.model_dir(model), env=State.of(repo).env(), check=False
    ).returncode
