"""State that must outlive a runner: the release ledger, the retrain log, gate results and the artifacts
that were evaluated and gated.

Where it lives, first match wins:

1. ``MODELCTL_STORE``: ``s3://bucket/prefix`` (any S3-compatible server; endpoint from
   ``MODELCTL_STORE_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL_S3``/``AWS_ENDPOINT_URL``, credentials from
   the usual AWS variables), or a local folder (path or ``file://``);
2. ``[tool.modelctl] store = "..."`` (and ``store_endpoint_url = "..."``) in the repository's root
   ``pyproject.toml``; a relative folder is relative to the repository;
3. the runner-local state folder (``<repo>/.modelctl`` or ``$MODELCTL_STATE_DIR``), as before.

``MODELCTL_STORE_TIMEOUT`` (seconds, default 30) bounds every call to an object store.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from modelctl.statestore.base import (
    PREVIOUS,
    Artifact,
    ArtifactMismatchError,
    Blob,
    CorruptStateError,
    Store,
    StoreError,
    VersionConflictError,
    check_key,
    check_name,
    parse_json,
)
from modelctl.statestore.local import LocalStore, sha256_file

__all__ = [
    "PREVIOUS",
    "Artifact",
    "ArtifactMismatchError",
    "Blob",
    "CorruptStateError",
    "LocalStore",
    "Store",
    "StoreError",
    "VersionConflictError",
    "check_key",
    "check_name",
    "configured_store",
    "open_store",
    "parse_json",
    "sha256_file",
    "store_settings",
]

ENV_URL = "MODELCTL_STORE"
ENV_ENDPOINT = "MODELCTL_STORE_ENDPOINT_URL"
ENV_TIMEOUT = "MODELCTL_STORE_TIMEOUT"
PYPROJECT_ORIGIN = "pyproject.toml [tool.modelctl] store"


def open_store(
    url: str, *, origin: str = ENV_URL, endpoint_url: str | None = None, timeout: float | None = None, base: Path
) -> Store:
    """The store at ``url``: ``s3://...`` or a local folder (relative to ``base``)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return LocalStore(base / url, origin)
    scheme = scheme.lower()
    if scheme == "file":
        return LocalStore(Path(rest), origin)
    if scheme in ("s3", "s3a"):
        from modelctl.statestore.s3 import S3Store  # s3fs is imported only for S3 stores

        return S3Store(f"s3://{rest}", origin, endpoint_url=endpoint_url, timeout=timeout)
    raise StoreError(
        f"store URL {url!r} ({origin}) has an unsupported scheme {scheme!r}: use s3://bucket/prefix (AWS S3, MinIO; "
        f"GCS through its S3 interoperability endpoint, {ENV_ENDPOINT}=https://storage.googleapis.com) or a folder"
    )


def _pyproject_tool(repo_root: Path) -> dict[str, Any]:
    path = repo_root / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise StoreError(f"{path} cannot be read to find the state store ({exc}); fix its syntax") from exc
    tool = data.get("tool", {}).get("modelctl", {})
    return tool if isinstance(tool, dict) else {}


def store_settings(repo_root: Path) -> tuple[str | None, str | None, str]:
    """(store URL or None for the local state folder, endpoint URL, where the URL came from)."""
    url = os.environ.get(ENV_URL, "").strip()
    if url:
        return url, os.environ.get(ENV_ENDPOINT, "").strip() or None, ENV_URL
    tool = _pyproject_tool(repo_root)
    configured = tool.get("store")
    if configured is None or configured == "":
        return None, None, "the local state folder"
    if not isinstance(configured, str):
        raise StoreError(f"{repo_root / 'pyproject.toml'}: [tool.modelctl] store must be a string URL or folder")
    endpoint = os.environ.get(ENV_ENDPOINT, "").strip() or tool.get("store_endpoint_url") or None
    if endpoint is not None and not isinstance(endpoint, str):
        raise StoreError(f"{repo_root / 'pyproject.toml'}: [tool.modelctl] store_endpoint_url must be a string URL")
    return configured, endpoint, PYPROJECT_ORIGIN


def _timeout() -> float | None:
    raw = os.environ.get(ENV_TIMEOUT, "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise StoreError(f"{ENV_TIMEOUT}={raw!r} is not a positive number of seconds")
    return seconds


def configured_store(repo_root: Path, state_root: Path) -> Store:
    """The store this repository is configured to use (see the module docstring)."""
    url, endpoint, origin = store_settings(repo_root)
    if url is None:
        return LocalStore(state_root, "the local state folder")
    base = Path.cwd() if origin == ENV_URL else repo_root
    return open_store(url, origin=origin, endpoint_url=endpoint, timeout=_timeout(), base=base)
