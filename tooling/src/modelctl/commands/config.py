"""`modelctl config MODEL`: the model's effective config, every default from the schema filled in."""

from __future__ import annotations

import argparse
import json

import yaml

from modelctl.console import out
from modelctl.repo import Repo, find_repo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "config",
        help="print a model's effective config (its config.yaml with every default filled in)",
        description="config.yaml lists only what the model sets; this prints what the tools use. "
        "Exit 2 for an unknown model or an invalid config.",
    )
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    parser.set_defaults(run=lambda a: config(find_repo(), a.model, as_json=a.json))


def config(repo: Repo, model: str, as_json: bool = False) -> int:
    (name,) = repo.resolve([model])
    effective = repo.config(name)
    data = effective.model_dump(mode="json")
    # Derived where unset: the batch size in effect (serving.max_rows), not null.
    data["serving"]["batching"]["max_batch_size"] = effective.serving.batch_rows
    if as_json:
        text = json.dumps(data, indent=2, ensure_ascii=False)
    else:
        text = f"# effective config of models/{name}/config.yaml (defaults from the schema filled in)\n"
        text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=1_000_000).rstrip("\n")
    out.print(text, markup=False, emoji=False)
    return 0
