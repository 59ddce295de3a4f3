"""Errors that modelctl reports as one line, with the exit code that says what kind."""

from __future__ import annotations


class ModelctlError(Exception):
    """An expected failure: printed without a traceback, exit code 1."""

    exit_code = 1


class UsageError(ModelctlError):
    """The user named something that does not exist or is malformed: exit code 2."""

    exit_code = 2


class TemplateError(UsageError):
    """A template answer was refused before anything was written."""
