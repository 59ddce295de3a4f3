"""Errors that modelctl reports as one line, and the exit codes that say what kind of failure it was."""

from __future__ import annotations

# Exit codes: the same meaning for every command, in scripts and in CI.
EXIT_OK = 0
EXIT_ERROR = 1  # an expected failure: tests failed, a command exited non-zero, a file is corrupt
EXIT_USAGE = 2  # the user named something that does not exist or is malformed
EXIT_REFUSED = 3  # a quality gate refused the candidate (load test, fuzzing, watch)
EXIT_INTERRUPTED = 130


class ModelctlError(Exception):
    """An expected failure: printed without a traceback, exit code 1."""

    exit_code = EXIT_ERROR


class UsageError(ModelctlError):
    """The user named something that does not exist or is malformed: exit code 2."""

    exit_code = EXIT_USAGE


class TemplateError(UsageError):
    """A template answer was refused before anything was written."""


class GateRefusedError(ModelctlError):
    """A quality gate (load test, fuzzing, post-deploy watch) refused a candidate: exit code 3."""

    exit_code = EXIT_REFUSED
