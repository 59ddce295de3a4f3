"""`modelctl notify`: post an outcome to Slack (or print it) and to the GitHub step summary."""

from __future__ import annotations

import argparse

from modelctl.errors import UsageError
from modelctl.names import parse_list
from modelctl.notify import Message, notify
from modelctl.repo import find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("notify", help="post an outcome to Slack and the GitHub step summary")
    parser.add_argument("--title", required=True)
    parser.add_argument("--verdict", required=True, help="e.g. success, failure, cancelled")
    parser.add_argument("--models", default="", help="models the run covered: a,b or a JSON list")
    parser.add_argument("--env", help="environment, when there is one")
    parser.add_argument("--fact", action="append", default=[], metavar="KEY=VALUE", help="an extra line")
    parser.set_defaults(run=lambda a: notify_command(a.title, a.verdict, a.models, a.env, a.fact))


def notify_command(title: str, verdict: str, models: str, env: str | None, facts: list[str]) -> int:
    extra: dict[str, str] = {}
    for fact in facts:
        key, sep, value = fact.partition("=")
        if not sep or not key:
            raise UsageError(f"--fact {fact!r} must look like KEY=VALUE")
        extra[key] = value
    names = parse_list(models) or []
    channel = None
    if len(names) == 1:
        channel = find_repo().config(names[0]).notify.slack_channel
    notify(Message(title=title, model=", ".join(names) or "-", verdict=verdict, env=env, facts=extra, channel=channel))
    return 0
