"""Locate the monorepo and its models."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from modelctl.errors import UsageError
from modelkit import ConfigError, ModelConfig, load_config

MODELS_DIR = "models"
TEMPLATE_DIR = "cookiecutter-model"


@dataclass(frozen=True)
class Repo:
    root: Path

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def template_dir(self) -> Path:
        return self.root / TEMPLATE_DIR

    def model_names(self) -> list[str]:
        """Every folder under ``models/`` that holds a ``config.yaml``, sorted."""
        if not self.models_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.models_dir.glob("*/config.yaml"))

    def model_dir(self, name: str) -> Path:
        return self.models_dir / name

    def resolve(self, names: list[str] | None) -> list[str]:
        """``names`` checked against the repo (all models when empty); unknown -> exit 2."""
        known = self.model_names()
        if not names:
            return known
        unknown = [n for n in names if n not in known]
        if unknown:
            hint = ", ".join(known) if known else "none yet: create one with `modelctl new`"
            raise UsageError(f"unknown model {unknown[0]!r} (no {MODELS_DIR}/{unknown[0]}/config.yaml); known: {hint}")
        return list(dict.fromkeys(names))

    def config(self, name: str) -> ModelConfig:
        """The validated config of model ``name``; malformed -> UsageError naming file and line."""
        try:
            return load_config(self.model_dir(name) / "config.yaml", check_folder_name=True)
        except ConfigError as exc:
            raise UsageError(str(exc.problems[0]) + _more(len(exc.problems))) from exc


def _more(count: int) -> str:
    return f" (and {count - 1} more problem{'s' if count > 2 else ''}; see `modelctl validate`)" if count > 1 else ""


def find_repo(start: Path | None = None) -> Repo:
    """The nearest ancestor of ``start`` (or ``$MODELCTL_ROOT``) that has ``models/`` and ``tooling/``."""
    env = os.environ.get("MODELCTL_ROOT")
    here = Path(env) if env else (start or Path.cwd())
    here = here.resolve()
    for candidate in (here, *here.parents):
        if (candidate / MODELS_DIR).is_dir() and (candidate / TEMPLATE_DIR).is_dir():
            return Repo(candidate)
    raise UsageError(
        f"{here} is not inside a model monorepo (no folder with {MODELS_DIR}/ and {TEMPLATE_DIR}/ above it); "
        "run modelctl from the repository or set MODELCTL_ROOT"
    )
