"""Parse the command line and dispatch to one command module; nothing else lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from modelctl import __version__
from modelctl.commands import (
    build,
    changed,
    ci,
    config,
    deploy,
    doctor,
    fuzz,
    list_models,
    loadtest,
    new,
    notify,
    pipeline,
    retrain,
    serve,
    train,
    validate,
)
from modelctl.errors import ModelctlError

# Each module exposes `register(subparsers)`; the parser it adds carries `run(args) -> int`.
COMMANDS: tuple[ModuleType, ...] = (
    new,
    list_models,
    validate,
    config,
    doctor,
    changed,
    ci,
    train,
    build,
    serve,
    loadtest,
    fuzz,
    deploy,
    pipeline,
    retrain,
    notify,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelctl",
        description="Scaffold, validate, select, build, gate and deploy the models of this monorepo.",
    )
    parser.add_argument("--version", action="version", version=f"modelctl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except ModelctlError as exc:
        print(f"modelctl {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
