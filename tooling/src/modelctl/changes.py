"""Which models a range of commits affects: pure rules, no git (`changeset.py` does the I/O).

Rules (issue #4):
- a file under ``models/<name>/`` selects that model, unless every changed file of the model matches
  its ``ci.ignore`` patterns (exploring in a notebook must not redeploy);
- a change under ``shared/`` selects every model whose requirements use ``shared/``, and only those;
- a change to a repo-wide build input (``[tool.modelctl] repo_wide_paths``) selects every model;
- a change under ``cookiecutter-model/`` selects the template job, not the models;
- a change to the platform itself (``[tool.modelctl] platform_paths``: tooling, shared code, the template,
  workflows, lock files, repo-wide inputs) selects the platform's own test suites; a change that touches
  only model folders does not, so a data scientist's pull request waits only for its models' checks;
- a model folder that existed at the base and not at the head is reported as removed, never built;
- a model's ``ci.extra_paths`` patterns select it too.

Patterns are gitignore-style (pathspec): ``ci.ignore`` is relative to the model folder and a pattern
without a slash matches at any depth (``*.md``); ``repo_wide_paths`` and ``ci.extra_paths`` are anchored
at the repository root (``tox.ini`` is the root file, ``tooling/`` everything under that folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

import pathspec

MODELS = "models/"
SHARED = "shared/"
TEMPLATE = "cookiecutter-model/"

# Reason kinds, in the order a summary names them.
OWN, SHARED_DEP, REPO_WIDE, EXTRA, NAMED = "own files", "shared", "repo-wide", "extra paths", "named"
_SHOWN = 3  # file names listed per reason in the one-line summary


@lru_cache(maxsize=4096)
def _spec(patterns: tuple[str, ...], anchored: bool) -> pathspec.GitIgnoreSpec:
    if anchored:
        patterns = tuple(p if p.startswith(("/", "**/")) else "/" + p for p in patterns)
    return pathspec.GitIgnoreSpec.from_lines(patterns)


def matches(path: str, pattern: str, anchored: bool = False) -> bool:
    """Whether ``path`` matches the gitignore-style ``pattern`` (a trailing ``/`` means "anything under")."""
    return _spec((pattern,), anchored).match_file(path)


def matches_any(path: str, patterns: Iterable[str], anchored: bool = False) -> bool:
    patterns = tuple(patterns)
    return bool(patterns) and _spec(patterns, anchored).match_file(path)


@dataclass(frozen=True)
class ModelInputs:
    """What decides whether a model is affected: its ignore patterns, extra paths, and shared/ use."""

    name: str
    ignore: tuple[str, ...] = ()
    extra_paths: tuple[str, ...] = ()
    uses_shared: bool = True


@dataclass
class Selection:
    models: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    template: bool = False
    # the platform's own suites must run: the changed paths under platform_paths (or why, when every model is)
    platform: list[str] = field(default_factory=list)
    # model -> reason kind -> the changed paths behind it (or, for NAMED, the reason text)
    detail: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def reason(self, model: str) -> str:
        """One readable line: what selected ``model``, with a few file names and the count."""
        parts = []
        for label, paths in self.detail.get(model, {}).items():
            prefix, _, kind = label.rpartition(": ")
            lead = f"{prefix}: " if prefix else ""
            shown = ", ".join(p.rsplit("/", 1)[-1] if kind == OWN else p for p in paths[:_SHOWN])
            more = ", ..." if len(paths) > _SHOWN else ""
            count = f"{len(paths)} file{'s' if len(paths) != 1 else ''}"
            if kind == OWN:
                parts.append(f"{lead}{count} changed under models/{model}/ ({shown}{more})")
            elif kind == SHARED_DEP:
                parts.append(f"{lead}uses shared/, where {count} changed ({shown}{more})")
            elif kind == REPO_WIDE:
                parts.append(f"{lead}repo-wide build input changed ({shown}{more})")
            elif kind == EXTRA:
                parts.append(f"{lead}ci.extra_paths matched {count} ({shown}{more})")
            else:
                parts.append(lead + "; ".join(paths))
        return "; ".join(parts)

    def reasons(self) -> dict[str, str]:
        return {model: self.reason(model) for model in self.models}

    def as_dict(self) -> dict[str, object]:
        return {
            "models": self.models,
            "removed": self.removed,
            "template": self.template,
            "platform": bool(self.platform),
            "reasons": self.reasons(),
            "detail": self.detail,
        }


def select_named(models: Iterable[str], reason: str) -> Selection:
    names = sorted(set(models))
    return Selection(models=names, detail={name: {NAMED: [reason]} for name in names})


def select(
    changed: Iterable[str],
    head_models: dict[str, ModelInputs],
    base_models: Iterable[str] = (),
    repo_wide: Iterable[str] = (),
    platform_paths: Iterable[str] = (),
) -> Selection:
    repo_wide = tuple(repo_wide)
    platform_paths = tuple(platform_paths) + repo_wide
    platform: list[str] = []
    detail: dict[str, dict[str, list[str]]] = {}
    removed: set[str] = set()
    template = False
    base = set(base_models)
    shared_users = [name for name, inputs in head_models.items() if inputs.uses_shared]
    with_extra = [(name, inputs.extra_paths) for name, inputs in head_models.items() if inputs.extra_paths]

    def pick(name: str, kind: str, path: str) -> None:
        detail.setdefault(name, {}).setdefault(kind, []).append(path)

    for path in changed:
        if matches_any(path, platform_paths, anchored=True):
            platform.append(path)
        if matches_any(path, repo_wide, anchored=True):
            for name in head_models:
                pick(name, REPO_WIDE, path)
        if path.startswith(TEMPLATE):
            template = True
        if path.startswith(SHARED):
            for name in shared_users:
                pick(name, SHARED_DEP, path)
        if path.startswith(MODELS) and path.count("/") >= 2:
            name, inner = path[len(MODELS) :].split("/", 1)
            inputs = head_models.get(name)
            if inputs is None:
                if name in base:
                    removed.add(name)
            elif not matches_any(inner, inputs.ignore):
                pick(name, OWN, path)
        for name, extra in with_extra:
            if matches_any(path, extra, anchored=True):
                pick(name, EXTRA, path)

    ordered = {name: detail[name] for name in sorted(detail)}
    return Selection(
        models=list(ordered), removed=sorted(removed), template=template, platform=platform, detail=ordered
    )
