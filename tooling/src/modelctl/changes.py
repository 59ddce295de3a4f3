"""Which models a range of commits affects: pure rules, no git (see commands/changed.py for the I/O).

Rules (issue #4):
- a file under ``models/<name>/`` selects that model, unless every changed file of the model matches
  its ``ci.ignore`` globs (exploring in a notebook must not redeploy);
- a change under ``shared/`` selects every model whose requirements use ``shared/``, and only those;
- a change to a repo-wide build input (``[tool.modelctl] repo_wide_paths``) selects every model;
- a change under ``cookiecutter-model/`` selects the template job, not the models;
- a model folder that existed at the base and not at the head is reported as removed, never built;
- a model's ``ci.extra_paths`` globs select it too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

MODELS = "models/"
SHARED = "shared/"
TEMPLATE = "cookiecutter-model/"
DEFAULT_REPO_WIDE = ("tooling/", "tox.ini", "toxfile.py", "pyproject.toml", ".github/workflows/")

# A requirements line that installs the monorepo's shared/ package by path (or by its name).
_SHARED_REQUIREMENT = re.compile(r"^\s*(-e\s+|--editable\s+)?(\S*/)?shared/?\s*$|^\s*modelkit\b", re.MULTILINE)


def uses_shared(requirements: str) -> bool:
    return _SHARED_REQUIREMENT.search(requirements) is not None


def matches(path: str, pattern: str) -> bool:
    """Glob match where ``**/`` may also match nothing and a trailing ``/`` means "anything under"."""
    if pattern.endswith("/"):
        return path.startswith(pattern)
    if fnmatchcase(path, pattern):
        return True
    return pattern.startswith("**/") and fnmatchcase(path, pattern[3:])


@dataclass(frozen=True)
class ModelInputs:
    """What decides whether a model is affected: its ignore globs, extra paths, and shared/ use."""

    name: str
    ignore: tuple[str, ...] = ()
    extra_paths: tuple[str, ...] = ()
    uses_shared: bool = True


@dataclass
class Selection:
    models: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    template: bool = False
    reasons: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"models": self.models, "removed": self.removed, "template": self.template, "reasons": self.reasons}


def select_all(models: Iterable[str], reason: str) -> Selection:
    names = sorted(models)
    return Selection(models=names, reasons={name: [reason] for name in names})


def select(
    changed: Iterable[str],
    head_models: dict[str, ModelInputs],
    base_models: Iterable[str] = (),
    repo_wide: Iterable[str] = DEFAULT_REPO_WIDE,
) -> Selection:
    repo_wide = tuple(repo_wide)
    reasons: dict[str, list[str]] = {}
    removed: set[str] = set()
    template = False
    base = set(base_models)

    def pick(name: str, reason: str) -> None:
        bucket = reasons.setdefault(name, [])
        if reason not in bucket:
            bucket.append(reason)

    for path in changed:
        if any(matches(path, pattern) for pattern in repo_wide):
            for name in head_models:
                pick(name, f"repo-wide build input changed: {path}")
        if path.startswith(TEMPLATE):
            template = True
        if path.startswith(SHARED):
            for name, inputs in head_models.items():
                if inputs.uses_shared:
                    pick(name, f"depends on shared/, which changed: {path}")
        if path.startswith(MODELS) and path.count("/") >= 2:
            name, inner = path[len(MODELS) :].split("/", 1)
            inputs = head_models.get(name)
            if inputs is None:
                if name in base:
                    removed.add(name)
            elif not any(matches(inner, pattern) for pattern in inputs.ignore):
                pick(name, f"its files changed: {path}")
        for name, inputs in head_models.items():
            if any(matches(path, pattern) for pattern in inputs.extra_paths):
                pick(name, f"ci.extra_paths matched: {path}")

    return Selection(
        models=sorted(reasons), removed=sorted(removed), template=template, reasons=dict(sorted(reasons.items()))
    )
