"""The models a range of commits affects, read from git: the I/O around the pure rules in changes.py."""

from __future__ import annotations

import os

from modelctl import git, requirements
from modelctl.changes import NAMED, ModelInputs, Selection, select, select_named
from modelctl.console import err
from modelctl.errors import UsageError
from modelctl.repo import Repo
from modelkit import ConfigError, ModelConfig, parse_config

_DEFAULT_CI = ModelConfig.model_fields["ci"].default


def models_at(repo: Repo, rev: str) -> list[str]:
    paths = git.list_tree(repo.root, rev, "models")
    return sorted({p.split("/")[1] for p in paths if p.count("/") == 2 and p.endswith("/config.yaml")})


def model_inputs(repo: Repo, rev: str, names: list[str]) -> dict[str, ModelInputs]:
    """Each model's ignore patterns, extra paths and shared/ use, read at ``rev`` in one git call."""
    wanted = [f"models/{n}/{f}" for n in names for f in ("config.yaml", "requirements.txt")]
    blobs = git.read_blobs(repo.root, rev, wanted)
    inputs: dict[str, ModelInputs] = {}
    for name in names:
        path = f"models/{name}/config.yaml"
        ci = _DEFAULT_CI
        try:
            ci = parse_config(blobs.get(path, ""), path).ci
        except ConfigError as exc:
            err.print(
                f"notice: {path} at {rev[:12]} is invalid ({exc.problems[0].message}); using the default ci rules",
                markup=False,
            )
        inputs[name] = ModelInputs(
            name=name,
            ignore=tuple(ci.ignore),
            extra_paths=tuple(ci.extra_paths),
            uses_shared=requirements.uses_shared_text(blobs.get(f"models/{name}/requirements.txt", "")),
        )
    return inputs


def unusable_base(base: str) -> str:
    if not base:
        return "no --base given"
    if set(base) == {"0"}:
        return "--base is all zeros (first push or new branch)"
    return f"--base {base!r} is not a known commit here (force push or shallow clone?)"


def compute(
    repo: Repo,
    base: str,
    head: str = "HEAD",
    select_every: bool = False,
    models: list[str] | None = None,
    rules_rev: str | None = None,
) -> Selection:
    """The selection for ``base..head``.

    ``rules_rev`` is the commit whose ``ci.ignore``/``ci.extra_paths`` apply (default: the head). A pull
    request passes its base, so it cannot exclude its own model by editing its own rules (issue 13).
    """
    head_sha = git.resolve(repo.root, head)
    if head_sha is None:
        raise UsageError(f"--head {head!r} is not a commit in {repo.root}")
    head_models = models_at(repo, head_sha)
    if models is not None:
        unknown = [n for n in models if n not in head_models]
        if unknown:
            known = ", ".join(head_models) if len(head_models) <= 20 else f"{len(head_models)} models"
            raise UsageError(f"unknown model {unknown[0]!r} in --models; known: {known or 'none'}")
        return select_named(models, "named with --models")
    if select_every:  # everything: the platform's suites too
        selection = select_named(head_models, "--all")
        selection.platform = ["--all"]
        return selection
    base_sha = git.resolve(repo.root, base)
    if base_sha is None:
        why = unusable_base(base)
        err.print(f"notice: {why}: selecting every model", markup=False)
        selection = select_named(head_models, f"{why}: every model is selected")
        selection.template = True
        selection.platform = [why]
        return selection
    changed_paths = [path for _, path in git.changed_files(repo.root, base_sha, head_sha)]
    rules_sha = head_sha if rules_rev is None else git.resolve(repo.root, rules_rev)
    if rules_sha is None:
        raise UsageError(f"--rules-from {rules_rev!r} is not a commit in {repo.root}")
    if rules_sha == head_sha:
        inputs = model_inputs(repo, head_sha, head_models)
    else:
        at_rules = set(models_at(repo, rules_sha))
        inputs = model_inputs(repo, rules_sha, [n for n in head_models if n in at_rules])
        # Models added by the range have no rules at the base: the default rules, their own shared/ use.
        missing = [n for n in head_models if n not in at_rules]
        for name, found in (model_inputs(repo, head_sha, missing) if missing else {}).items():
            inputs[name] = ModelInputs(name, tuple(_DEFAULT_CI.ignore), (), found.uses_shared)
    settings = repo.settings
    return select(changed_paths, inputs, models_at(repo, base_sha), settings.repo_wide_paths, settings.platform_paths)


def since_deployed(repo: Repo, env: str, head: str = "HEAD", fallback_base: str = "") -> Selection:
    """The models whose inputs changed since the commit last deployed to ``env`` (read from the state store), so a
    run that was cancelled or failed is picked up by the next one; never-deployed models are selected, models
    live in ``env`` whose folder is gone are removed. Without a shared store in CI: ``fallback_base..head``."""
    from modelctl.state import State

    state = State.of(repo)
    if os.environ.get("GITHUB_ACTIONS") == "true" and not state.store.shared:
        err.print(
            f"notice: no shared state store (MODELCTL_STORE): selecting by {fallback_base or '(no base)'}..{head}; "
            "a deploy that is cancelled or fails is not retried by the next run",
            markup=False,
        )
        return compute(repo, fallback_base, head)
    head_sha = git.resolve(repo.root, head)
    if head_sha is None:
        raise UsageError(f"--head {head!r} is not a commit in {repo.root}")
    head_models = models_at(repo, head_sha)
    ledger = state.ledger
    groups: dict[str, list[str]] = {}
    named: dict[str, str] = {}
    for name in head_models:
        commit = ledger.deployed_commit(name, env)
        resolved = git.resolve(repo.root, commit) if commit else None
        if commit is None:
            named[name] = f"never deployed to {env}"
        elif resolved is None:
            named[name] = f"its {env} deploy was built from {commit[:12]}, which is not in this history"
        else:
            groups.setdefault(resolved, []).append(name)
    selection = Selection(template=False)
    inputs = model_inputs(repo, head_sha, head_models)
    for base, names in groups.items():
        changed_paths = [path for _, path in git.changed_files(repo.root, base, head_sha)]
        part = select(changed_paths, {n: inputs[n] for n in names}, (), repo.settings.repo_wide_paths)
        for name, detail in part.detail.items():
            selection.detail[name] = {f"since {env} deploy {base[:12]}: {k}": v for k, v in detail.items()}
    for name, reason in named.items():
        selection.detail[name] = {NAMED: [reason]}
    selection.detail = dict(sorted(selection.detail.items()))
    selection.models = list(selection.detail)
    selection.removed = sorted(
        name for name in ledger.models() if name not in head_models and ledger.live(name, env) is not None
    )
    return selection
