"""Read what modelctl needs from the BentoML store's files (no bentoml import in the CLI process).

An imported archive brings its own bento.yaml and model.yaml into the store, so both are read as untrusted text:
through modelkit's reader, which refuses YAML anchors and aliases before anything expands them (BentoML never
writes one; 484 bytes of merge keys took `yaml.safe_load` 46 s and 820 MB, issue 20 item 12), and every value
modelctl uses is type-checked first. A file that fails either is a StoreFileError naming it, never a crash.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelctl.archive import split_tag
from modelctl.errors import ModelctlError
from modelctl.repo import Repo
from modelctl.state import State
from modelkit import ConfigError, read_yaml


class StoreFileError(ModelctlError):
    """A bento.yaml or model.yaml in the BentoML store that cannot be used; the message names the file."""


_NAMES: dict[type, str] = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
}


def _kind(value: object) -> str:
    return "nothing" if value is None else _NAMES.get(type(value), f"a {type(value).__name__}")


def _yaml(path: Path) -> dict[str, Any]:
    """The mapping in ``path``; {} when there is no such file (nothing in the store)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreFileError(f"cannot read {path}: {exc}") from exc
    try:
        data = read_yaml(text, str(path))
    except ConfigError as exc:
        raise StoreFileError(f"cannot use {exc.problems[0]}") from None
    if not isinstance(data, dict):
        raise StoreFileError(f"{path}: expected a mapping, got {_kind(data)}")
    return data


def _typed(data: dict[str, Any], key: str, kind: type, path: Path, within: str = "") -> Any:
    """``data[key]`` when it is a ``kind`` (None when absent); StoreFileError naming the file and the key (under
    ``within``, e.g. "services[0].") otherwise."""
    value = data.get(key)
    if value is not None and not isinstance(value, kind):
        raise StoreFileError(f"{path}: {within}{key}: expected {_NAMES[kind]}, got {_kind(value)}")
    return value


def _bento_yaml(repo: Repo, bento: str) -> Path:
    name, version = split_tag(bento)  # a plain name:version before it becomes a path
    return State.of(repo).bentoml_home / "bentos" / name / version / "bento.yaml"


def bento_info(repo: Repo, bento: str) -> dict[str, Any]:
    """``bento``'s bento.yaml ({} when the store has no such bento), the keys modelctl reads type-checked:
    ``labels`` a mapping whose ``git_commit`` is a string, ``service`` a string, and every model entry (top level
    and per service) a mapping whose ``tag`` is a string."""
    path = _bento_yaml(repo, bento)
    info = _yaml(path)
    labels = _typed(info, "labels", dict, path) or {}
    _typed(labels, "git_commit", str, path, "labels.")
    _typed(info, "service", str, path)
    _model_entries(info, path)
    return info


def _model_entries(info: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    """The model entries of bento.yaml: the top-level list, then each service's (BentoML 1.4 lists them there)."""
    lists = [("", _typed(info, "models", list, path) or [])]
    for index, service in enumerate(_typed(info, "services", list, path) or []):
        if not isinstance(service, dict):
            raise StoreFileError(f"{path}: services[{index}]: expected a mapping, got {_kind(service)}")
        lists.append((f"services[{index}].", _typed(service, "models", list, path, f"services[{index}].") or []))
    entries = []
    for within, models in lists:
        for index, model in enumerate(models):
            where = f"{within}models[{index}]"
            if not isinstance(model, dict):
                raise StoreFileError(f"{path}: {where}: expected a mapping, got {_kind(model)}")
            _typed(model, "tag", str, path, f"{where}.")
            entries.append(model)
    return entries


def bento_exists(repo: Repo, bento: str) -> bool:
    return bool(bento_info(repo, bento))


def model_tag_of(repo: Repo, bento: str) -> str | None:
    """The model packaged with ``bento``: the first model entry with a tag."""
    entries = _model_entries(bento_info(repo, bento), _bento_yaml(repo, bento))
    return next((str(entry["tag"]) for entry in entries if entry.get("tag")), None)


def model_metrics(repo: Repo, model_tag: str | None) -> dict[str, float]:
    """The training metrics in ``model_tag``'s model.yaml (`metadata.metrics`, name -> number)."""
    if not model_tag:
        return {}
    name, version = split_tag(model_tag, "model tag")
    path = State.of(repo).bentoml_home / "models" / name / version / "model.yaml"
    metadata = _typed(_yaml(path), "metadata", dict, path) or {}
    metrics = _typed(metadata, "metrics", dict, path, "metadata.") or {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StoreFileError(f"{path}: metadata.metrics.{key}: expected a number, got {_kind(value)}")
    return {str(k): float(v) for k, v in metrics.items()}


def service_name(repo: Repo, bento: str) -> str:
    service = str(bento_info(repo, bento).get("service") or "service:Service")
    return service.rpartition(":")[2]
