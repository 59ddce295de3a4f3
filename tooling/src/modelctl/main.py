"""Parse the command line and dispatch to one command module; nothing else lives here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from modelctl import __version__, processenv, procs
from modelctl.commands import (
    build,
    changed,
    ci,
    config,
    dashboard,
    deploy,
    doctor,
    export,
    features,
    fuzz,
    ledger,
    list_models,
    loadtest,
    lock,
    monitor,
    new,
    notify,
    pipeline,
    retrain,
    rollback,
    serve,
    status,
    train,
    undeploy,
    upgrade,
    validate,
)
from modelctl.errors import EXIT_INTERRUPTED, ModelctlError
from modelctl.redact import redact

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
    status,
    dashboard,
    rollback,
    undeploy,
    export,
    ledger,
    pipeline,
    retrain,
    monitor,
    notify,
    upgrade,
    features,
    lock,
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
    # Sealed on import (modelctl/__init__.py); again here for a caller that cleared the flag.
    processenv.seal_own_environment()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        # SIGTERM, SIGHUP and SIGINT unwind the command, so every server it started is stopped on the way out.
        with procs.supervised():
            return int(args.run(args))
    except ModelctlError as exc:
        print(f"modelctl {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt as exc:
        print("interrupted", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_INTERRUPTED))


if __name__ == "__main__":
    raise SystemExit(main())
