"""`modelctl serve MODEL`: serve a built bento (or the model folder) on 127.0.0.1 in the foreground."""

from __future__ import annotations

import argparse

from modelctl import bentos, procs
from modelctl.cliargs import PORT
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("serve", help="serve a model on 127.0.0.1 in the foreground (Ctrl-C stops it)")
    parser.add_argument("model")
    parser.add_argument("--bento", help="bento tag (default: the newest built; the model folder when none is)")
    parser.add_argument("--port", type=PORT, help="port, 1024..65535 (default: serving.ports.dev)")
    parser.set_defaults(run=lambda a: serve(find_repo(), a.model, a.bento, a.port))


def serve(repo: Repo, model: str, bento: str | None, port: int | None) -> int:
    repo.resolve([model])
    port = port or repo.config(model).port("dev")
    # SIGTERM/SIGHUP (a supervisor, `kill`) unwind like Ctrl-C, so the server and its workers
    # (BentoML workers leave the process group) are stopped before modelctl exits (issue 15.7).
    with procs.supervised():
        return bentos.serve_foreground(repo, model, bento, port)
