"""Read what modelctl needs from the BentoML store's files (no bentoml import in the CLI process)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelctl.archive import split_tag
from modelctl.repo import Repo
from modelctl.state import State


def _yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


def bento_info(repo: Repo, bento: str) -> dict[str, Any]:
    name, version = split_tag(bento)  # a plain name:version before it becomes a path
    return _yaml(State.of(repo).bentoml_home / "bentos" / name / version / "bento.yaml")


def bento_exists(repo: Repo, bento: str) -> bool:
    return bool(bento_info(repo, bento))


def model_tag_of(repo: Repo, bento: str) -> str | None:
    """The model packaged with ``bento`` (BentoML 1.4 lists it per service, not in the top-level list)."""
    info = bento_info(repo, bento)
    candidates = list(info.get("models") or [])
    for service in info.get("services") or []:
        candidates += service.get("models") or [] if isinstance(service, dict) else []
    for model in candidates:
        if isinstance(model, dict) and model.get("tag"):
            return str(model["tag"])
    return None


def model_metrics(repo: Repo, model_tag: str | None) -> dict[str, float]:
    if not model_tag:
        return {}
    name, version = split_tag(model_tag, "model tag")
    info = _yaml(State.of(repo).bentoml_home / "models" / name / version / "model.yaml")
    metrics = (info.get("metadata") or {}).get("metrics") or {}
    return {str(k): float(v) for k, v in metrics.items()}


def service_name(repo: Repo, bento: str) -> str:
    service = str(bento_info(repo, bento).get("service", "service:Service"))
    return service.rpartition(":")[2]
