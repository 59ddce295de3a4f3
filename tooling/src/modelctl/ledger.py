"""The release ledger and the retrain log: every deploy attempt and every retraining run, per model.

One JSON document per model in the state store (``ledger/<model>.json`` and
``ledger/<model>.retrain.json``; a folder locally, an object store when configured, so any runner
reads what another deployed). An append is a compare-and-swap update of the whole document: two
runners appending at once both land, a killed writer leaves the old or the new document, and the
replaced version stays as ``<key>.prev`` (``modelctl ledger restore MODEL`` puts it back).

Reading is strict about what modelctl relies on (an object with a list of records, the known fields
with their types) and tolerant of the rest: fields it does not know, written by a newer modelctl,
are kept on every rewrite. Anything else is a one-line LedgerError naming the key and the fix.

Release numbers count per environment (issue 23): the n-th successful deploy of a model in an environment
is its ``vn`` there, so one bento released to staging and then production is v1 in both. The number is
derived from the order of the records whenever a ledger is read (``number_releases``), which also renumbers
ledgers written when one counter ran across environments; appends store the same number in ``version``.
"""

from __future__ import annotations

import getpass
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from modelctl.statestore import CorruptStateError, LocalStore, Store, check_name

OUTCOMES = ("deployed", "failed", "rolled_back", "undeployed", "rendered")
LEDGER_PREFIX = "ledger"


class LedgerError(CorruptStateError):
    """A ledger or retrain log in the store is not what modelctl wrote."""


@dataclass
class Record:
    model: str
    env: str
    target: str
    outcome: str
    bento: str | None = None
    model_tag: str | None = None
    git_commit: str | None = None
    version: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    loadtest: dict[str, Any] = field(default_factory=dict)
    url: str | None = None
    sha256: str | None = None
    reason: str | None = None
    triggered_by: str = ""
    at: str = ""
    # Unique per append: makes a retried append (after a lost response) land once.
    id: str = ""


# What each field of a stored record may hold (JSON types); REQUIRED must be present.
_STR, _OPT_STR, _INT, _OBJECT = "a string", "a string or null", "an integer", "an object"
FIELD_TYPES: dict[str, str] = {
    "model": _STR,
    "env": _STR,
    "target": _STR,
    "outcome": _STR,
    "bento": _OPT_STR,
    "model_tag": _OPT_STR,
    "git_commit": _OPT_STR,
    "version": _INT,
    "metrics": _OBJECT,
    "loadtest": _OBJECT,
    "url": _OPT_STR,
    "sha256": _OPT_STR,
    "reason": _OPT_STR,
    "triggered_by": _STR,
    "at": _STR,
    "id": _STR,
}
REQUIRED = ("model", "env", "target", "outcome")
_FIELDS = {f.name for f in fields(Record)}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_id() -> str:
    return uuid.uuid4().hex


def triggered_by() -> str:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        env = os.environ
        repository = f"{env.get('GITHUB_SERVER_URL', '')}/{env.get('GITHUB_REPOSITORY', '')}"
        run = f"{repository}/actions/runs/{env.get('GITHUB_RUN_ID', '')}"
        return f"github-actions {env.get('GITHUB_WORKFLOW', '')} {run}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__


# One check per JSON type of FIELD_TYPES (a dict lookup: every record of every ledger read goes through these).
_FITS: dict[str, Callable[[object], bool]] = {
    _STR: lambda value: isinstance(value, str),
    _OPT_STR: lambda value: value is None or isinstance(value, str),
    _INT: lambda value: isinstance(value, int) and not isinstance(value, bool),
    _OBJECT: lambda value: isinstance(value, dict),
}
# Values parsed from JSON have exactly these types: checking the type first skips the call for nearly every field.
_EXACT: dict[str, tuple[type, ...]] = {_STR: (str,), _OPT_STR: (str, type(None)), _INT: (int,), _OBJECT: (dict,)}
_FIELD_CHECKS = tuple((name, expected, _EXACT[expected], _FITS[expected]) for name, expected in FIELD_TYPES.items())


def record_problem(item: object) -> str | None:
    """What is wrong with one stored record, or None."""
    if not isinstance(item, dict):
        return f"is {json_type(item)}, not an object"
    for name in REQUIRED:
        if name not in item:
            return f"has no {name!r}"
    for name, expected, exact, fits in _FIELD_CHECKS:
        if name in item and type(item[name]) not in exact and not fits(item[name]):
            return f"field {name!r} should be {expected}, found {json_type(item[name])}"
    metrics = item.get("metrics") or {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"metric {name!r} should be a number, found {json_type(value)}"
    return _value_problem(item)


def _value_problem(item: dict[str, Any]) -> str | None:
    """Values that later become paths, choices or ordering: they must be what modelctl writes."""
    from modelctl.archive import ArchiveError, split_tag
    from modelkit import ENVIRONMENTS

    if item["env"] not in ENVIRONMENTS:
        return f"field 'env' is {item['env']!r}, not one of {', '.join(ENVIRONMENTS)}"
    if item["outcome"] not in OUTCOMES:
        return f"field 'outcome' is {item['outcome']!r}, not one of {', '.join(OUTCOMES)}"
    if item.get("version", 0) < 0:
        return f"field 'version' is {item['version']}, not a version number"
    for name in ("bento", "model_tag"):
        if item.get(name) is None:
            continue
        try:
            tag_name, _ = split_tag(item[name], name)
        except ArchiveError as exc:
            return str(exc)
        if name == "bento" and tag_name != item["model"]:
            return f"field 'bento' is {item['bento']!r}, a bento of another model than {item['model']!r}"
    return None


def _document_problem(document: object, list_field: str, what: str, item_problem: Any) -> str | None:
    if not isinstance(document, dict):
        return f'is not {what}: expected a JSON object with "{list_field}", found {json_type(document)}'
    items = document.get(list_field)
    if not isinstance(items, list):
        found = "nothing" if list_field not in document else json_type(items)
        return f'is not {what}: "{list_field}" should be a list, found {found}'
    for index, item in enumerate(items):
        problem = item_problem(item)
        if problem:
            return f"is not {what}: entry {index + 1} of {len(items)} {problem}"
    return None


def ledger_problem(document: object) -> str | None:
    return _document_problem(document, "records", "a release ledger", record_problem)


def retrain_log_problem(document: object) -> str | None:
    return _document_problem(
        document, "runs", "a retrain log", lambda run: None if isinstance(run, dict) else f"is {json_type(run)}"
    )


def number_releases(items: list[dict[str, Any]]) -> list[int]:
    """The per-environment release number of each stored record, in order.

    A deploy is the next number in its environment. A rollback (or a failed rollback) re-releases a bento
    that was deployed there before and carries that deploy's number; records that released nothing (a
    refused or failed deploy, an undeploy) have 0. The stored ``version`` only says whether a record
    pointed at an earlier release: ledgers from before issue 23 stored one counter per model there.
    """
    count: dict[str, int] = {}
    released: dict[tuple[str, str | None], int] = {}
    numbers = []
    for item in items:
        env, bento = item["env"], item.get("bento")
        if item["outcome"] == "deployed":
            count[env] = count.get(env, 0) + 1
            released[(env, bento)] = number = count[env]
        elif item.get("version", 0) > 0:
            number = released.get((env, bento), 0)
        else:
            number = 0
        numbers.append(number)
    return numbers


def next_release(items: list[dict[str, Any]], env: str) -> int:
    """The number the next deploy in ``env`` gets."""
    return 1 + sum(1 for item in items if item.get("env") == env and item.get("outcome") == "deployed")


def to_record(item: dict[str, Any], version: int | None = None) -> Record:
    """A validated stored record as a Record (fields this modelctl does not know stay in the store), with
    ``version`` instead of the stored one when given."""
    known = {k: v for k, v in item.items() if k in _FIELDS}
    known["metrics"] = {str(k): float(v) for k, v in (known.get("metrics") or {}).items()}
    if version is not None:
        known["version"] = version
    return Record(**known)


def _store(where: Store | Path) -> Store:
    # Ledger(Path) (the old signature) keeps working: a local store rooted at that folder.
    return LocalStore(where) if isinstance(where, Path) else where


class _ModelDocuments:
    """One JSON document per model under ``prefix`` in a store."""

    suffix = ".json"
    list_field = "records"
    restore_flag = ""

    def __init__(self, store: Store | Path, prefix: str = LEDGER_PREFIX) -> None:
        self.store = _store(store)
        self.prefix = "" if isinstance(store, Path) else prefix

    def key(self, model: str) -> str:
        name = f"{check_name(model, 'model name')}{self.suffix}"
        return f"{self.prefix}/{name}" if self.prefix else name

    def where(self, model: str) -> str:
        return self.store.where(self.key(model))

    def fix(self, model: str) -> str:
        return (
            f"restore the previous version with `modelctl ledger restore {model}{self.restore_flag}` "
            f"(it puts back {self.key(model)}.prev)"
        )

    def problem(self, document: object) -> str | None:
        raise NotImplementedError

    def _items(self, model: str, document: object) -> list[Any]:
        if document is None:
            return []
        problem = self.problem(document)
        if problem:
            raise LedgerError(self.where(model), problem, self.fix(model))
        assert isinstance(document, dict)
        return list(document[self.list_field])

    def items(self, model: str) -> list[Any]:
        found = self.store.read_json(self.key(model), fix=self.fix(model))
        return self._items(model, None if found is None else found[0])

    def _append(self, model: str, entry: dict[str, Any], number: bool = False) -> dict[str, Any]:
        """Append ``entry`` (with a unique ``id``) by compare-and-swap; the entry as stored."""

        def add(document: Any) -> Any:
            items = self._items(model, document)
            if any(isinstance(i, dict) and i.get("id") == entry["id"] for i in items):
                return document  # this append already landed (a retry after a lost response)
            stored = dict(entry)
            if number:
                stored["version"] = next_release(items, str(entry["env"]))
            return {**(document or {}), "model": model, self.list_field: [*items, stored]}

        result = self.store.update_json(self.key(model), add, fix=self.fix(model))
        return next(i for i in reversed(result[self.list_field]) if isinstance(i, dict) and i.get("id") == entry["id"])

    def restore(self, model: str) -> int:
        """Put back the previous version of this model's document; how many entries it holds."""
        document = self.store.restore(self.key(model), check=self.problem)
        return len(document[self.list_field])


class RetrainLog(_ModelDocuments):
    """Every retraining run per model (scores, decision, versions), next to the release ledger."""

    suffix = ".retrain.json"
    list_field = "runs"
    restore_flag = " --retrain-log"

    def problem(self, document: object) -> str | None:
        return retrain_log_problem(document)

    def records(self, model: str) -> list[dict[str, Any]]:
        return [dict(run) for run in self.items(model)]

    def append(self, model: str, run: dict[str, Any]) -> dict[str, Any]:
        entry = {"at": now(), "triggered_by": triggered_by(), **run}
        entry["id"] = str(entry.get("id") or new_id())
        return self._append(model, entry)


class Ledger(_ModelDocuments):
    def problem(self, document: object) -> str | None:
        return ledger_problem(document)

    def records(self, model: str) -> list[Record]:
        """Every record of ``model``, oldest first, ``version`` numbered per environment (``number_releases``)."""
        return [to_record(item, number) for item, number in self.numbered(model)]

    def numbered(self, model: str) -> list[tuple[dict[str, Any], int]]:
        """Every stored record of ``model`` (validated, as stored) with its per-environment release number: for
        readers of many ledgers that need no Record objects (the dashboard reads ~80,000 records at 1,000 models)."""
        items = self.items(model)
        return list(zip(items, number_releases(items), strict=True))

    def append(self, record: Record) -> Record:
        """Append ``record``; a deploy gets the next release number of its environment. Fills in (and returns)
        ``record``."""
        record.at = record.at or now()
        record.triggered_by = record.triggered_by or triggered_by()
        record.id = record.id or new_id()
        stored = self._append(record.model, asdict(record), number=record.outcome == "deployed")
        record.version = int(stored.get("version", record.version))
        return record

    def live(self, model: str, env: str) -> Record | None:
        """The record of what is live in ``env``: the last deploy, rollback or undeploy there."""
        for record in reversed(self.records(model)):
            if record.env == env and record.outcome in ("deployed", "rolled_back", "undeployed"):
                return None if record.outcome == "undeployed" else record
        return None

    def models(self) -> list[str]:
        """Every model the ledger has records of (removed models included)."""
        names = set()
        # "ledger/", not "ledger": a local store lists a prefix from its parent folder (the whole state folder here).
        for key in self.store.list(f"{self.prefix}/" if self.prefix else ""):
            name = key.removeprefix(self.prefix).lstrip("/")
            if name.endswith(".json") and not name.endswith(".retrain.json") and "/" not in name:
                names.add(name.removesuffix(".json"))
        return sorted(names)

    def deployed_commit(self, model: str, env: str) -> str | None:
        """The git commit the bento live in ``env`` was built from (issue 13: deploy in commit order), or None."""
        live = self.live(model, env)
        return live.git_commit if live else None

    def previous_good(self, model: str, env: str, before: Record | None) -> Record | None:
        """The last successful deploy in ``env`` of a different bento than ``before``."""
        current = before.bento if before else None
        for record in reversed(self.records(model)):
            if record.env == env and record.outcome in ("deployed", "rolled_back") and record.bento != current:
                return record
        return None

    def find_version(self, model: str, env: str, version: int) -> Record | None:
        for record in self.records(model):
            if record.env == env and record.outcome == "deployed" and record.version == version:
                return record
        return None
