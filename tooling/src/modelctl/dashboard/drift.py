"""Drift results as the dashboard reads them from the state store (``modelctl monitor`` writes them; this reads).

Location: ``monitor/<model>/<env>/<anything>.json``, one JSON object per check, as ``modelctl.monitor.result``
writes it, for example::

    {"at": "2026-12-02T10:00:00Z", "drifted": true, "share_drifted": 0.5, "verdict": "drift",
     "features": [{"name": "petal_length", "drifted": true, "test": "ks", "p_value": 0.001}, ...]}

``at`` (an ISO 8601 time) and ``drifted`` (true/false) are required. Optional: ``score`` or else
``share_drifted`` (a number: the drift chart's y), ``threshold`` (a number), ``verdict`` (a string; one that
says "quality breached" needs attention too), ``features`` (a list of feature names, a list of objects with
``name`` and ``drifted``, or an object of name -> true/false or name -> {"drifted": ...}; the drifted ones are
listed). Other fields are ignored. Checks are ordered by ``at``. A record that is not like this is reported as
unreadable (file and field named) and left out; the others still count.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from modelctl.dashboard.model import DriftCheck
from modelctl.ledger import json_type
from modelctl.statestore import LocalStore, Store, StoreError

PREFIX = "monitor"


def _local_keys(root: Path) -> list[str]:
    """``monitor/<model>/<env>/<file>`` keys of a local store, by scanning just those three levels: the generic
    listing stats every file below the prefix (1,000 models x 10 checks took most of a second)."""
    keys = []
    for model in _folders(root / PREFIX):
        for env in _folders(Path(model.path)):
            names = [e.name for e in os.scandir(env.path) if e.name.endswith(".json") and e.is_file()]
            keys += [f"{PREFIX}/{model.name}/{env.name}/{name}" for name in names if not name.startswith(".")]
    return keys


def _folders(path: Path) -> list[os.DirEntry[str]]:
    try:
        return [entry for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith(".")]
    except (FileNotFoundError, NotADirectoryError):
        return []


def keys_by_model(store: Store) -> dict[str, dict[str, list[str]]]:
    """Every drift record key in ``store``, as model -> env -> keys (one listing for all models)."""
    found: dict[str, dict[str, list[str]]] = {}
    listed = _local_keys(store.root) if isinstance(store, LocalStore) else store.list(f"{PREFIX}/")
    for key in listed:
        parts = key.split("/")
        if len(parts) == 4 and parts[3].endswith(".json"):
            found.setdefault(parts[1], {}).setdefault(parts[2], []).append(key)
    return found


def _number(record: dict[str, Any], name: str) -> float | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"field {name!r} should be a number, found {json_type(value)}")
    return float(value)


def _drifted(flag: object) -> bool:
    return flag is True or (isinstance(flag, dict) and flag.get("drifted") is True)


def _features(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    if isinstance(value, list) and all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in value):
        return tuple(str(v["name"]) for v in value if _drifted(v))
    if isinstance(value, dict):
        return tuple(str(name) for name, flag in value.items() if _drifted(flag))
    raise ValueError(
        "field 'features' should be a list of names, a list of objects with a name, or an object; "
        f"found {json_type(value)}"
    )


def parse(env: str, document: object) -> DriftCheck:
    """One drift record as a DriftCheck; ValueError saying what is wrong with it."""
    if not isinstance(document, dict):
        raise ValueError(f"is {json_type(document)}, not an object")
    at, drifted = document.get("at"), document.get("drifted")
    if not isinstance(at, str) or not at:
        raise ValueError(f"field 'at' should be a time (a string), found {json_type(at)}")
    if not isinstance(drifted, bool):
        raise ValueError(f"field 'drifted' should be true/false, found {json_type(drifted)}")
    verdict = document.get("verdict")
    if verdict is not None and not isinstance(verdict, str):
        raise ValueError(f"field 'verdict' should be a string, found {json_type(verdict)}")
    score = _number(document, "score")
    return DriftCheck(
        env=env,
        at=at,
        drifted=drifted,
        score=score if score is not None else _number(document, "share_drifted"),
        threshold=_number(document, "threshold"),
        features=_features(document.get("features")),
        verdict=verdict or ("drift" if drifted else "no drift"),
    )


def read(store: Store, keys: dict[str, list[str]]) -> tuple[list[DriftCheck], list[str]]:
    """(the checks of one model, oldest first; one line per record that could not be read)."""
    checks, problems = [], []
    for env, env_keys in sorted(keys.items()):
        for key in env_keys:
            try:
                found = store.read_json(key)
                if found is None:
                    continue
                checks.append(parse(env, found[0]))
            except StoreError as exc:  # names the key itself
                problems.append(str(exc).splitlines()[0])
            except ValueError as exc:
                problems.append(f"{store.where(key)}: {exc}")
    checks.sort(key=lambda check: check.at)
    return checks, problems
