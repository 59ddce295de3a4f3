"""The one way modelctl runs another program: every failure is a CommandError with the same shape.

The message names the command (shortened), its exit code and the last lines of its output, so
whatever fails (git, tox, bentoml, a model's train.py) reads the same in a terminal and in CI.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from modelctl.errors import ModelctlError

TAIL_LINES = 15


class CommandError(ModelctlError):
    """A program exited non-zero, could not be started, or ran out of time."""

    def __init__(self, what: str, argv: Sequence[str], returncode: int | None, output: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.output = output
        status = "timed out" if returncode is None else f"exited {returncode}"
        tail = tail_of(output)
        super().__init__(f"{what} ({shorten(argv)}) {status}" + (f":\n{tail}" if tail else ""))


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()

    def last_json_line(self) -> str:
        """The last stdout line that looks like a JSON object (tools print logs before their result)."""
        for line in reversed(self.stdout.strip().splitlines()):
            if line.startswith("{"):
                return line
        return ""


def tail_of(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def shorten(argv: Sequence[str], limit: int = 160) -> str:
    shown = " ".join(shlex.quote(Path(a).name if i == 0 else a) for i, a in enumerate(argv))
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def run(
    argv: Sequence[str | Path],
    *,
    what: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    input: str | bytes | None = None,  # noqa: A002 - subprocess's own name
    timeout: float | None = None,
    check: bool = True,
    on_start: Callable[[int], None] | None = None,
) -> Completed:
    """Run ``argv`` to completion, capturing its output; CommandError (``what`` failed) unless ``check`` is off.

    ``env`` replaces the environment when given (pass ``{**os.environ, ...}`` to extend it). ``on_start`` gets
    the pid as soon as the program runs (to stop it from another thread). The program is killed when it runs out
    of ``timeout`` or when anything (Ctrl-C) interrupts the wait.
    """
    args = [str(a) for a in argv]
    label = what or f"`{Path(args[0]).name}`"
    text_input = input.decode("utf-8", "replace") if isinstance(input, bytes) else input
    try:
        process = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.PIPE if text_input is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise CommandError(label, args, 127, f"{args[0]}: not found on PATH ({exc})") from exc
    with process:
        if on_start is not None:
            on_start(process.pid)
        try:
            stdout, stderr = process.communicate(text_input, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            process.kill()
            stdout, stderr = process.communicate()
            raise CommandError(f"{label} after {timeout:.0f}s", args, None, _text(stdout) + _text(stderr)) from exc
        except BaseException:
            process.kill()
            raise
    completed = Completed(args, process.returncode, stdout, stderr)
    if check and process.returncode != 0:
        raise CommandError(label, args, process.returncode, completed.output)
    return completed


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data


def clean_env(extra: Mapping[str, str] | None = None, drop_prefixes: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment without variables starting with ``drop_prefixes``, plus ``extra``."""
    env = (
        {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}
        if drop_prefixes
        else dict(os.environ)
    )
    env.update(extra or {})
    return env


def run_bytes(
    argv: Sequence[str | Path],
    *,
    what: str,
    cwd: Path | None = None,
    input: bytes | None = None,  # noqa: A002
) -> bytes:
    """Like :func:`run` for binary output (e.g. `git cat-file --batch`); stdout as bytes, CommandError on failure."""
    args = [str(a) for a in argv]
    try:
        result = subprocess.run(args, cwd=cwd, input=input, capture_output=True, check=False)
    except FileNotFoundError as exc:
        raise CommandError(what, args, 127, f"{args[0]}: not found on PATH ({exc})") from exc
    if result.returncode != 0:
        raise CommandError(what, args, result.returncode, result.stderr.decode("utf-8", "replace"))
    return result.stdout
