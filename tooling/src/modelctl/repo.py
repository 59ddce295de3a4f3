"""Locate the monorepo, its settings (`[tool.modelctl]` in the root pyproject.toml) and its models."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from modelctl.errors import UsageError
from modelkit import ConfigError, ModelConfig, load_config

if TYPE_CHECKING:
    from modelctl.model import Model

MODELS_DIR = "models"
TEMPLATE_DIR = "cookiecutter-model"
SHARED_DIR = "shared"
# GitHub refuses a matrix of more than 256 jobs per workflow run.
GITHUB_MATRIX_LIMIT = 256
DEFAULT_REPO_WIDE = ("tooling/", "tox.ini", "toxfile.py", "pyproject.toml", ".github/workflows/")
# What the platform's own suites (lint's mypy, shared, tooling, template, airflow) test: a change to any of these
# runs them in CI; the repo-wide paths always count too.
DEFAULT_PLATFORM = (
    "tooling/",
    "shared/",
    "cookiecutter-model/",
    "bench/",
    ".github/",
    ".ci/",
    "Makefile",
    ".pre-commit-config.yaml",
    ".secrets.baseline",
    ".gitignore",
)


# Every key `[tool.modelctl]` may have (the state store reads `store` and `store_endpoint_url`).
KNOWN_SETTINGS = frozenset({"repo_wide_paths", "platform_paths", "max_jobs", "store", "store_endpoint_url"})


@dataclass(frozen=True)
class Settings:
    """`[tool.modelctl]` of the root pyproject.toml: the repo-wide knobs, each with a default."""

    repo_wide_paths: tuple[str, ...] = DEFAULT_REPO_WIDE
    platform_paths: tuple[str, ...] = DEFAULT_PLATFORM
    max_jobs: int = GITHUB_MATRIX_LIMIT

    @classmethod
    def read(cls, root: Path) -> Settings:
        path = root / "pyproject.toml"
        if not path.is_file():
            return cls()
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise UsageError(f"{path}: invalid TOML: {exc}") from exc
        table = data.get("tool", {}).get("modelctl", {})
        unknown = sorted(set(table) - KNOWN_SETTINGS)
        if unknown:
            raise UsageError(
                f"{path}: unknown key tool.modelctl.{unknown[0]}; expected one of: {', '.join(sorted(KNOWN_SETTINGS))}"
            )
        lists = {}
        for key, default in (("repo_wide_paths", DEFAULT_REPO_WIDE), ("platform_paths", DEFAULT_PLATFORM)):
            paths = table.get(key, list(default))
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise UsageError(f"{path}: tool.modelctl.{key} must be a list of path strings")
            lists[key] = tuple(paths)
        max_jobs = table.get("max_jobs", GITHUB_MATRIX_LIMIT)
        if not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or not 1 <= max_jobs <= GITHUB_MATRIX_LIMIT:
            raise UsageError(
                f"{path}: tool.modelctl.max_jobs must be an integer from 1 to {GITHUB_MATRIX_LIMIT} "
                f"(GitHub's matrix limit), got {max_jobs!r}"
            )
        return cls(lists["repo_wide_paths"], lists["platform_paths"], max_jobs)


@dataclass(frozen=True)
class Repo:
    root: Path
    _models: dict[str, Model] = field(default_factory=dict, compare=False, repr=False)

    @property
    def models_dir(self) -> Path:
        return self.root / MODELS_DIR

    @property
    def template_dir(self) -> Path:
        return self.root / TEMPLATE_DIR

    @cached_property
    def settings(self) -> Settings:
        return Settings.read(self.root)

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
            if len(known) > 20:
                hint = f"{len(known)} models, see `modelctl list`"
            raise UsageError(f"unknown model {unknown[0]!r} (no {MODELS_DIR}/{unknown[0]}/config.yaml); known: {hint}")
        return list(dict.fromkeys(names))

    def config(self, name: str) -> ModelConfig:
        """The validated config of model ``name``; malformed -> UsageError naming file and line."""
        try:
            return load_config(self.model_dir(name) / "config.yaml", check_folder_name=True)
        except ConfigError as exc:
            raise UsageError(str(exc.problems[0]) + _more(len(exc.problems))) from exc

    def model(self, name: str) -> Model:
        """Model ``name``, resolved and its config validated once per process."""
        if name not in self._models:
            self.resolve([name])
            self._load(name)
        return self._models[name]

    def models(self, names: list[str] | None = None) -> list[Model]:
        """Every model (or those named), each resolved and validated once: one scan of ``models/``."""
        resolved = self.resolve(names)
        for name in resolved:
            if name not in self._models:
                self._load(name)
        return [self._models[name] for name in resolved]

    def _load(self, name: str) -> None:
        from modelctl.model import Model

        self._models[name] = Model(self, name, self.config(name))


def _more(count: int) -> str:
    return f" (and {count - 1} more problem{'s' if count > 2 else ''}; see `modelctl validate`)" if count > 1 else ""


def find_repo(start: Path | None = None) -> Repo:
    """The nearest ancestor of ``start`` (or ``$MODELCTL_ROOT``) that has ``models/`` and ``cookiecutter-model/``."""
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
