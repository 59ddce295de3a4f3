"""Entity features from the monorepo's shared Feast repository (`input: entity` models; issue 21).

A request carries ids; the service looks their features up in Feast's online store (:func:`online_matrix`), and
training joins labels with event timestamps to the offline store point-in-time correct (:func:`training_frame`).
Where things are comes from the environment (``MODEL_*``: the allow-list modelctl passes to model processes):

- ``MODEL_FEATURE_REPO``: the feature repository (``feature_store.yaml``, ``definitions.py``, ``generate.py``);
  default ``shared/feature_repo`` of the monorepo above the start folder.
- ``MODEL_FEATURE_DATA``: the registry, the SQLite online store and the example's offline Parquet; default
  ``.feast/`` at the monorepo's root (outside ``shared/``: model environments are keyed by ``shared/``'s files).
- ``MODEL_FEATURE_ONLINE_STORE``: unset or ``sqlite`` for Feast's embedded SQLite; ``redis://[:password@]host:port[/db]``
  (``rediss://`` for TLS) for Redis, the production online store.

``python -m modelkit.features materialize --repo PATH --end TIME`` is what `modelctl features materialize` runs in
the platform's Feast environment. Feast is imported only when a store is opened: `modelctl` imports this module
without it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

REPO_ENV = "MODEL_FEATURE_REPO"
DATA_ENV = "MODEL_FEATURE_DATA"
ONLINE_ENV = "MODEL_FEATURE_ONLINE_STORE"
REPO_IN_MONOREPO = Path("shared") / "feature_repo"
CONFIG_FILE = "feature_store.yaml"
REGISTRY_FILE = "registry.db"
ONLINE_FILE = "online_store.db"
REDIS_TIMEOUT_S = 3.0
_MAX_IDS_SHOWN = 5
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FeatureStoreError(Exception):
    """A feature store that cannot be used as configured: one line, naming the file, variable or value."""


class UnknownEntities(FeatureStoreError):  # noqa: N818 - reads as what it is: ids the store does not know
    """Ids the online store holds no features for (never materialized, or not in the offline data)."""

    def __init__(self, key: str, ids: Sequence[Any]) -> None:
        self.key = key
        self.ids = list(ids)
        shown = ", ".join(str(i) for i in self.ids[:_MAX_IDS_SHOWN])
        more = f" and {len(self.ids) - _MAX_IDS_SHOWN} more" if len(self.ids) > _MAX_IDS_SHOWN else ""
        noun = "has" if len(self.ids) == 1 else "have"
        super().__init__(f"{key} {shown}{more} {noun} no features in the feature store")


class FeatureStoreUnavailable(FeatureStoreError):  # noqa: N818 - reads as what it is
    """The online store did not answer a lookup (e.g. Redis is down): a service answers 503."""


@dataclass(frozen=True)
class Location:
    """Where one feature store is: its repository, its data folder and its online store (``""``: SQLite)."""

    repo: Path
    data: Path
    online: str = ""

    @property
    def online_description(self) -> str:
        """The online store for messages: the SQLite file, or Redis's host and port (never a password)."""
        if not self.online:
            return f"sqlite {self.data / ONLINE_FILE}"
        parts = urlsplit(self.online)
        return f"redis {parts.hostname}:{parts.port or 6379}"


def find_repo(start: Path) -> Path | None:
    """``shared/feature_repo`` of the nearest folder at or above ``start`` that has one."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / REPO_IN_MONOREPO / CONFIG_FILE).is_file():
            return folder / REPO_IN_MONOREPO
    return None


def default_data(repo: Path) -> Path:
    """``.feast/`` beside ``shared/`` when the repository is the monorepo's, else ``data/`` in the repository."""
    repo = repo.resolve()
    if repo.parent.name == REPO_IN_MONOREPO.parent.name:
        return repo.parent.parent / ".feast"
    return repo / "data"


def locate(
    repo: Path | str | None = None,
    data: Path | str | None = None,
    online: str | None = None,
    start: Path | None = None,
) -> Location:
    """The feature store from the arguments, else the environment (module docstring), else the defaults."""
    chosen = repo or os.environ.get(REPO_ENV) or find_repo(start or Path.cwd())
    if not chosen:
        raise FeatureStoreError(
            f"no feature repository: set {REPO_ENV} or run inside the monorepo (its {REPO_IN_MONOREPO} is not above "
            f"{(start or Path.cwd()).resolve()})"
        )
    repo_path = Path(chosen).expanduser().resolve()
    if not (repo_path / CONFIG_FILE).is_file():
        raise FeatureStoreError(f"{repo_path} is not a feature repository: it has no {CONFIG_FILE}")
    data_path = Path(data or os.environ.get(DATA_ENV) or default_data(repo_path)).expanduser().resolve()
    url = (os.environ.get(ONLINE_ENV, "") if online is None else online).strip()
    if url.lower() == "sqlite":
        url = ""
    if url:
        redis_connection(url)  # refuses a malformed value now, not at the first request
    return Location(repo_path, data_path, url)


def redis_connection(url: str) -> str:
    """``redis://[:password@]host[:port][/db]`` as Feast's Redis connection string (``host:port,db=N,...``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        # Only a scheme is echoed, and only when the value has one: the rest may hold a password.
        scheme = parts.scheme if "://" in url and parts.scheme.isalpha() else "none"
        raise FeatureStoreError(
            f"{ONLINE_ENV} must be `sqlite` or a URL redis://host[:port][/db] (rediss:// for TLS; a password goes "
            f"in the URL's user part); got a value whose scheme is {scheme!r}"
        )
    try:
        port = parts.port or 6379
        path = parts.path.strip("/")
        db = int(path) if path else 0
    except ValueError:
        raise FeatureStoreError(f"{ONLINE_ENV}: the port and database of a redis:// URL must be numbers") from None
    # Timeouts: a Redis that hangs costs a request REDIS_TIMEOUT_S and an answer of 503, never the server's 30 s.
    settings = [f"{parts.hostname}:{port}", f"db={db}"]
    settings += [f"socket_timeout={REDIS_TIMEOUT_S}", f"socket_connect_timeout={REDIS_TIMEOUT_S}"]
    # Feast reads each value with json.loads: a password such as `1e3` or `true` is written as a JSON string so
    # that it arrives as it was typed.
    if parts.password:
        password = unquote(parts.password)
        if "," in password:  # Feast splits its connection string at commas
            raise FeatureStoreError(f"{ONLINE_ENV}: Feast cannot take a Redis password that contains a comma")
        settings.append(f"password={json.dumps(password)}")
    if parts.username:
        settings.append(f"username={json.dumps(unquote(parts.username))}")
    if parts.scheme == "rediss":
        settings.append("ssl=true")
    return ",".join(settings)


def repo_config(location: Location) -> Any:
    """Feast's ``RepoConfig``: ``feature_store.yaml`` with the registry and online store of ``location``."""
    from feast.repo_config import RepoConfig

    path = location.repo / CONFIG_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise FeatureStoreError(f"cannot read {path}: {_first_line(exc)}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("project"), str):
        raise FeatureStoreError(f"{path}: expected a mapping with a `project` name")
    raw["registry"] = str(location.data / REGISTRY_FILE)
    if location.online:
        raw["online_store"] = {"type": "redis", "connection_string": redis_connection(location.online)}
    else:
        configured = raw.get("online_store") or {"type": "sqlite"}
        if not isinstance(configured, dict) or configured.get("type", "sqlite") != "sqlite":
            raise FeatureStoreError(f"{path}: online_store must be `type: sqlite` (Redis is chosen with {ONLINE_ENV})")
        raw["online_store"] = {**configured, "type": "sqlite", "path": str(location.data / ONLINE_FILE)}
    try:
        return RepoConfig(repo_path=location.repo, **raw)
    except Exception as exc:  # pydantic's ValidationError, raised through Feast's own wrappers
        raise FeatureStoreError(f"{path}: {_first_line(exc)}") from exc


def open_store(location: Location) -> Any:
    """Feast's ``FeatureStore`` at ``location`` (nothing applied, nothing read yet)."""
    from feast import FeatureStore

    return FeatureStore(repo_path=str(location.repo), config=repo_config(location))


def open_online(location: Location, features: Sequence[str]) -> Any:
    """The store a service reads ``features`` (``view:feature``) from, checked at start-up: the registry holds
    their views and the Redis online store answers. A one-line FeatureStoreError otherwise."""
    check_online(location)
    registry = location.data / REGISTRY_FILE
    if not registry.is_file():
        raise FeatureStoreError(
            f"no feature registry at {registry}: run `modelctl features materialize` (or set {DATA_ENV} to the "
            "folder it wrote)"
        )
    store = open_store(location)
    for view in sorted({reference.split(":", 1)[0] for reference in features}):
        try:
            store.get_feature_view(view)
        except Exception as exc:  # Feast's FeatureViewNotFoundException, or a registry it cannot read
            raise FeatureStoreError(
                f"the feature registry {registry} has no feature view {view!r} ({_first_line(exc)}): run "
                "`modelctl features materialize`"
            ) from exc
    return store


def _repo_module(repo: Path, name: str) -> ModuleType:
    path = repo / f"{name}.py"
    if not path.is_file():
        raise FeatureStoreError(f"{repo} has no {name}.py")
    spec = importlib.util.spec_from_file_location(f"feature_repo_{name}", path)
    if spec is None or spec.loader is None:
        raise FeatureStoreError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(location: Location, say: Callable[[str], None] | None = None) -> Any:
    """The store with the repository's definitions applied; the example's offline data generated when missing."""
    report = say or (lambda _: None)
    generator = _repo_module(location.repo, "generate")
    files: Sequence[str] = getattr(generator, "FILES", ())
    if any(not (location.data / name).is_file() for name in files):
        started = time.monotonic()
        written = generator.generate(location.data)
        report(f"generated the offline data: {', '.join(Path(p).name for p in written)} ({_since(started)})")
    objects = _repo_module(location.repo, "definitions").definitions(location.data)
    location.data.mkdir(parents=True, exist_ok=True)
    store = open_store(location)
    started = time.monotonic()
    store.apply(objects)
    names = ", ".join(sorted(getattr(o, "name", "?") for o in objects))
    report(f"applied {len(objects)} definitions to the registry ({names}; {_since(started)})")
    return store


def check_online(location: Location) -> None:
    """Fail in a few seconds, with one line naming it, when the Redis online store cannot be reached."""
    if not location.online:
        return
    import redis

    client = redis.Redis.from_url(
        location.online, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise FeatureStoreError(
            f"cannot reach the Redis online store at {location.online_description.removeprefix('redis ')} "
            f"({ONLINE_ENV}): {_first_line(exc)}"
        ) from exc
    finally:
        client.close()


def parse_time(text: str) -> datetime:
    """``now`` or an ISO 8601 time; a time without a zone is UTC."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise FeatureStoreError(f"{text!r} is not a time: expected `now` or ISO 8601, e.g. 2026-11-01T00:00") from exc
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def materialize(
    location: Location,
    end: datetime | None = None,
    start: datetime | None = None,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Apply the repository and load its feature views' latest values up to ``end`` into the online store.

    ``start`` defaults to ``end`` minus each view's TTL (older values are not served). Returns the views."""
    check_online(location)
    end = end or datetime.now(UTC)
    say(f"feature repository {location.repo}; data {location.data}; online store {location.online_description}")
    store = prepare(location, say)
    views = sorted(store.list_feature_views(), key=lambda view: str(view.name))
    for view in views:
        ttl: timedelta | None = view.ttl
        begin = start or (end - ttl if ttl else _EPOCH)
        say(f"materializing {view.name}: {begin.isoformat(timespec='seconds')} -> {end.isoformat(timespec='seconds')}")
        started = time.monotonic()
        try:
            store.materialize(start_date=begin, end_date=end, feature_views=[view.name])
        except Exception as exc:
            raise FeatureStoreError(
                f"materializing {view.name} into {location.online_description} failed: {_first_line(exc)}"
            ) from exc
        say(f"materialized {view.name} ({_since(started)})")
    return [str(view.name) for view in views]


def online_matrix(store: Any, features: Sequence[str], key: str, ids: Sequence[Any]) -> Any:
    """The online features of ``ids`` (``key``: the entity's join key) as a float64 array (len(ids), len(features)),
    columns in ``features`` order (``view:feature`` references). UnknownEntities when the store has none for an id;
    FeatureStoreUnavailable when the online store cannot be read (Redis down)."""
    import numpy as np

    try:
        response = store.get_online_features(features=list(features), entity_rows=[{key: i} for i in ids]).to_dict()
    except Exception as exc:  # the online store is down or unreadable: the caller answers 503, not a traceback
        raise FeatureStoreUnavailable(f"the online store did not answer: {_first_line(exc)}") from exc
    names = [reference.split(":", 1)[-1] for reference in features]
    columns = [response[name] for name in names]
    # An id the store lacks any of the features for is unknown to the model: answered 404, never a NaN it cannot take.
    unknown = [i for row, i in enumerate(ids) if any(column[row] is None for column in columns)]
    if unknown:
        raise UnknownEntities(key, unknown)
    matrix = np.array([[math.nan if v is None else v for v in column] for column in columns], dtype=np.float64)
    return matrix.T.reshape(len(ids), len(names))


def training_frame(store: Any, entities: Any, features: Sequence[str]) -> Any:
    """``entities`` (a DataFrame: the join key, ``event_timestamp`` and labels) joined point-in-time correct with
    ``features`` from the offline store: each row gets the latest values at or before its own time, within the
    view's TTL. Rows with no such values are left out; the order is (key, time)."""
    frame = store.get_historical_features(entity_df=entities, features=list(features)).to_df()
    names = [reference.split(":", 1)[-1] for reference in features]
    keys = [column for column in entities.columns if column != "event_timestamp"][:1]
    return frame.dropna(subset=names).sort_values([*keys, "event_timestamp"]).reset_index(drop=True)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _since(started: float) -> str:
    return f"{time.monotonic() - started:.1f} s"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m modelkit.features")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("materialize", help="apply the repository, load the online store")
    run.add_argument("--repo", type=Path, help=f"the feature repository (default: ${REPO_ENV} or {REPO_IN_MONOREPO})")
    run.add_argument("--end", default="now", help="load values up to this time (ISO 8601, UTC when no zone; now)")
    run.add_argument("--start", help="from this time (default: end minus each view's TTL)")
    args = parser.parse_args(argv)
    try:
        location = locate(args.repo)
        end = parse_time(args.end)
        start = parse_time(args.start) if args.start else None
        views = materialize(location, end, start, say=lambda line: print(line, flush=True))
    except FeatureStoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"materialized {len(views)} feature view(s) into {location.online_description}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
