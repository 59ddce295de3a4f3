"""Release: put a fuzzed, gate-passed bento live in an environment on a deploy target, keep the ledger, go back, stop.

Targets: `local` (really deployed here), `kubernetes` and `bentocloud` (rendered, applied when configured).
A failed attempt is recorded and never changes what is live.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelctl import archive, bentos, bentostore, cmd, git, lease, platformenv, procs
from modelctl import watch as watching
from modelctl.console import err
from modelctl.delivery import fuzzing
from modelctl.delivery.gate import not_passed, passed_summary
from modelctl.errors import GateRefusedError, ModelctlError, UsageError
from modelctl.ledger import Record
from modelctl.model import Model
from modelctl.redact import redact
from modelctl.repo import Repo
from modelctl.state import State
from modelctl.targets import bentocloud, kubernetes, local
from modelkit import ENVIRONMENTS


class ReleaseError(ModelctlError):
    pass


class DeployFailedError(ModelctlError):
    """A deploy attempt failed (and was recorded as ``record``); what was live stays live."""

    def __init__(self, record: Record, cause: ModelctlError) -> None:
        super().__init__(str(cause))
        self.record, self.cause, self.exit_code = record, cause, cause.exit_code


def in_ci() -> bool:
    """In a GitHub Actions job, where the environment's required reviewers stand before production deploys."""
    return os.environ.get("GITHUB_ACTIONS") == "true"


@contextmanager
def locked(repo: Repo, name: str, env: str) -> Iterator[lease.Lease | None]:
    """One deploy of a model to an environment at a time: on this machine (a file lock) and, with a shared state
    store, across runners (a lease in the store, renewed while held: yielded, None without a shared store)."""
    wait_s = float(os.environ.get("MODELCTL_DEPLOY_LOCK_WAIT", "600"))
    with local.deploy_lock(repo, name, env, wait_s):
        store = State.of(repo).store
        if not store.shared:
            yield None
            return
        with lease.held(store, f"locks/{name}/{env}.json", f"a deploy of {name} to {env}", wait_s) as held:
            yield held


def _still_held(held: lease.Lease | None, doing: str) -> None:
    """Before ``doing`` (a ledger write, a rollback): LeaseLostError if another runner took the lease meanwhile."""
    if held is not None:
        held.check(doing)


def check_environment(model: Model, env: str, approved: bool) -> None:
    if env not in model.config.deploy.environments:
        raise UsageError(f"{model.relative('config.yaml')} has no deploy.environments.{env}")
    if model.config.deploy.environments[env].approval and not approved:
        raise UsageError(f"{env} requires approval: pass --yes (in CI the GitHub environment's reviewers give it)")


def unverified(model: Model, bento: str) -> str | None:
    """None when ``bento`` passed both fuzzing and the load-test gate (each recorded in the state store for that
    bento: `promote.verify`, or `modelctl fuzz` and `modelctl loadtest`); else which it lacks and what to run."""
    missing = []
    if fuzzing.passed_summary(model, bento) is None:
        missing.append(("fuzzing", f"`modelctl fuzz {model.name} --bento {bento}`"))
    lacking_gate = not_passed(model, bento)
    if lacking_gate is not None:
        missing.append((lacking_gate, f"`modelctl loadtest {model.name} --bento {bento}`"))
    if not missing:
        return None
    if len(missing) == 1:
        return f"{bento} has not passed {missing[0][0]}; run {missing[0][1]}"
    return f"{bento} has passed neither {missing[0][0]} nor {missing[1][0]}; run {missing[0][1]}, then {missing[1][1]}"


def choose_target(model: Model, target: str | None) -> str:
    chosen = target or model.config.deploy.targets[0]
    if chosen not in model.config.deploy.targets:
        raise UsageError(
            f"target {chosen!r} is not in deploy.targets {model.config.deploy.targets} "
            f"of {model.relative('config.yaml')}"
        )
    return chosen


def new_record(model: Model, env: str, target: str, bento: str, outcome: str, version: int = 0) -> Record:
    """A ledger record for ``bento``: its model tag, commit, metrics and load-test numbers."""
    repo = model.repo
    model_tag = bentostore.model_tag_of(repo, bento)
    gate = passed_summary(model, bento) or {}
    return Record(
        model=model.name,
        env=env,
        target=target,
        outcome=outcome,
        bento=bento,
        model_tag=model_tag,
        git_commit=str((bentostore.bento_info(repo, bento).get("labels") or {}).get("git_commit", "")) or None,
        metrics=bentostore.model_metrics(repo, model_tag),
        version=version,
        loadtest={k: gate[k] for k in ("p90_ms", "error_rate", "rps", "requests", "report_dir") if k in gate},
    )


@dataclass
class Observer:
    """What a caller may want to know about a deploy beyond its record: when the new version went live (before
    the watch), and what the watch concluded."""

    live_at: float | None = None
    watch_summary: str = "not watched"


class WatchBreachedError(GateRefusedError):
    """The new version breached `deploy.watch` after going live and was rolled back (exit 3)."""

    def __init__(self, message: str, record: Record, verdict: watching.WatchVerdict | None) -> None:
        super().__init__(message)
        self.record, self.verdict = record, verdict


def deploy(
    model: Model,
    env: str,
    bento: str,
    *,
    target: str | None = None,
    approved: bool = False,
    force: bool = False,
    sha256: str | None = None,
    outcome: str = "deployed",
    version: int = 0,
    watch: bool = True,
    adopt: bentos.Running | None = None,
    observer: Observer | None = None,
) -> Record:
    """Deploy ``bento`` to ``env``, then watch it (`deploy.watch`); the ledger record (appended on success and on
    failure). A version that breaches the watch is rolled back to what was live before (or stopped, when nothing
    was) and WatchBreachedError says so. ``adopt``: a verified server already running on the environment's local
    port, which becomes the live deployment instead of starting the bento again (stopped on any failure)."""
    try:
        return _deploy(
            model, env, bento, target, approved, force, sha256, outcome, version, watch, adopt, observer or Observer()
        )
    except BaseException:
        if adopt is not None and local.read_live(model.repo, model.name, env) is None:
            adopt.stop()
        raise


def _deploy(
    model: Model,
    env: str,
    bento: str,
    target: str | None,
    approved: bool,
    force: bool,
    sha256: str | None,
    outcome: str,
    version: int,
    watch: bool,
    adopt: bentos.Running | None,
    observer: Observer,
) -> Record:
    check_environment(model, env, approved)
    chosen = choose_target(model, target)
    if not bentostore.bento_exists(model.repo, bento):
        raise UsageError(f"bento {bento} of {model.name} is not in the store; run `modelctl build {model.name}`")
    missing = unverified(model, bento)
    if missing is not None and not force:
        raise ReleaseError(f"{missing} (or --force)")
    ledger = State.of(model.repo).ledger
    with locked(model.repo, model.name, env) as held:
        before = ledger.live(model.name, env)
        record = _deploy_locked(model, env, chosen, bento, outcome, version, sha256, before, adopt, held)
        observer.live_at = time.monotonic()
        if watch and record.url is not None and model.config.deploy.watch.duration_s > 0:
            observer.watch_summary = _watch_or_roll_back(model, env, record, before, held)
        return record


def _deploy_locked(
    model: Model,
    env: str,
    target: str,
    bento: str,
    outcome: str,
    version: int,
    sha256: str | None,
    before: Record | None,
    adopt: bentos.Running | None = None,
    held: lease.Lease | None = None,
) -> Record:
    ledger = State.of(model.repo).ledger
    record = new_record(model, env, target, bento, outcome, version)
    record.sha256 = sha256
    url: str | None
    try:
        if outcome != "rolled_back":
            refuse_older(model, env, record, before)
        if adopt is not None and target == "local" and before is None:
            url = local.adopt(model.repo, model.name, env, adopt, model.sample()).url
        else:
            url = deploy_to(model, env, target, bento)
    except ModelctlError as exc:
        record.outcome, record.reason = "failed", redact(str(exc).splitlines()[0])
        _still_held(held, f"recording the failed deploy of {bento} in the ledger")
        raise DeployFailedError(ledger.append(record), exc) from exc
    record.outcome = outcome if url is not None else "rendered"
    record.url = url
    _still_held(held, f"recording {bento} in the ledger")
    return ledger.append(record)


def _scraper(model: Model, env: str, record: Record) -> str | watching.Scraper:
    if record.target == "kubernetes" and record.url:
        context, namespace, _ = kubernetes.parse_live_url(record.url)
        return kubernetes.metrics_scraper(model.name, env, namespace=namespace, context=context)
    if record.target == "bentocloud":
        name = bentocloud.deployment_name(model.name, env)
        return bentocloud.metrics_scraper(name, cluster=model.config.deploy.bentocloud.cluster)
    assert record.url is not None
    return record.url


def _watch_or_roll_back(
    model: Model, env: str, record: Record, before: Record | None, held: lease.Lease | None = None
) -> str:
    """Watch the version that just went live; on a breach, put back what was live before and raise. A lost
    lease (another deploy took over) stops the watch at the next sample and never rolls back."""
    limits = watching.Limits.from_config(model.config)
    err.print(f"  watching {record.bento} in {env} for {limits.duration_s:.0f}s ...", markup=False)
    verdict: watching.WatchVerdict | None = None

    def lease_kept(_verdict: watching.WatchVerdict) -> None:
        if held is not None:
            held.raise_if_lost(f"watching {record.bento} to the end")

    try:
        verdict = watching.watch(
            _scraper(model, env, record),
            limits,
            version=(record.bento or ":").split(":")[1],
            on_sample=lease_kept,
            # Where no real traffic arrives (staging, local), a small load of the model's own samples: the new
            # version is judged before it is called good (issue 22 item 6). Production only if configured.
            smoke=watching.SmokeLoad.for_deploy(model.config, model.folder, env, record.url),
        )
        if verdict.passed:
            err.print(f"  watch: {verdict.summary()}", markup=False)
            return verdict.summary()
        reason = f"watch: {verdict.summary()}"
    except watching.WatchError as exc:  # the new version could not even be observed: do not keep it
        reason = f"watch could not observe {record.bento}: {exc}"
    ledger = State.of(model.repo).ledger
    _still_held(held, f"rolling back {record.bento}")
    if before is not None and before.bento:
        err.print(f"  {reason}; rolling back to {before.bento}", markup=False)
        back = _deploy_locked(
            model, env, before.target, before.bento, "rolled_back", before.version, None, None, held=held
        )
        note = f"rolled back to v{back.version} ({before.bento})"
    else:
        err.print(f"  {reason}; nothing was live before: stopping it", markup=False)
        _stop_everywhere(model.repo, model.name, env, [record])
        _still_held(held, f"recording that {record.bento} was stopped in the ledger")
        back = ledger.append(
            Record(model=model.name, env=env, target=record.target, outcome="undeployed", bento=record.bento)
        )
        note = "stopped (nothing was live before)"
    _still_held(held, f"recording the breach of {record.bento} in the ledger")
    ledger.append(
        Record(
            model=model.name,
            env=env,
            target=record.target,
            outcome="failed",
            bento=record.bento,
            model_tag=record.model_tag,
            git_commit=record.git_commit,
            reason=redact(f"{reason}; {note}"),
        )
    )
    raise WatchBreachedError(f"{record.bento} breached the watch in {env} ({reason}); {note}", back, verdict)


def refuse_older(model: Model, env: str, candidate: Record, live: Record | None) -> None:
    """Refuse a bento built from a commit older than the live one's: a re-run or an out-of-order approval must
    not put an older version over a newer one (`modelctl rollback` is the explicit way back)."""
    if live is None or not live.git_commit or not candidate.git_commit or live.git_commit == candidate.git_commit:
        return
    older = git.is_ancestor(model.repo.root, candidate.git_commit, live.git_commit)
    if older:
        raise ReleaseError(
            f"{candidate.bento} was built from {candidate.git_commit}, older than {live.git_commit} of the live "
            f"{live.bento} in {env}: refusing to go back in time (use `modelctl rollback {model.name} --env {env}` "
            "to do it on purpose)"
        )


def deploy_to(model: Model, env: str, target: str, bento: str) -> str | None:
    """Deploy on ``target``; the live URL, or None when manifests were only rendered (no cluster configured)."""
    repo, config = model.repo, model.config
    state = State.of(repo)
    if target == "local":
        return local.deploy(repo, model.name, env, bento, config.port(env), model.sample()).url
    if target == "kubernetes":
        context = config.deploy.kubernetes.context
        if context is None:
            path = kubernetes.write(
                kubernetes.render(config, bento, env), state.deploy_dir(model.name, env) / "kubernetes.yaml"
            )
            err.print(f"rendered {path}; set deploy.kubernetes.context to apply it", markup=False)
            return None
        manifests = kubernetes.render(config, bento, env, image_ref=pushed_image(model, bento))
        path = kubernetes.write(manifests, state.deploy_dir(model.name, env) / "kubernetes.yaml")
        kubernetes.apply(path, context)
        return kubernetes.live_url(context, config.deploy.kubernetes.namespace, model.name, env)
    document = bentocloud.render(config, bento, env, bentostore.service_name(repo, bento))
    path = bentocloud.write(document, state.deploy_dir(model.name, env) / "bentocloud.yaml")
    # The platform's BentoML with BentoCloud's credentials only; the model's environment never holds them.
    call_env = platformenv.environment(state.bentoml_home)
    bentocloud.deploy(platformenv.python(state.root), path, call_env, bentocloud.credentials())
    return f"bentocloud://{document['name']}"


def pushed_image(model: Model, bento: str) -> str:
    """The image of ``bento`` by digest: containerized and pushed once (by the first environment that needs it),
    recorded in the state store, and reused by every later deploy of it, so production runs the image staging
    ran."""
    state = State.of(model.repo)
    name, version = archive.split_tag(bento)
    key = f"images/{name}/{version}.json"
    found = state.store.read_json(key)
    if found is not None and isinstance(found[0], dict) and found[0].get("image"):
        return str(found[0]["image"])
    tag = kubernetes.image(model.config, bento)
    docker = {k: v for k, v in os.environ.items() if k.startswith(("DOCKER_", "BUILDKIT_"))}
    kubernetes.containerize(
        platformenv.python(state.root), bento, tag, platformenv.environment(state.bentoml_home, docker)
    )
    reference = kubernetes.push(tag)
    state.store.write_json(key, {"bento": bento, "image": reference})
    return reference


def rollback(model: Model, env: str, to: int | None = None) -> Record:
    ledger = State.of(model.repo).ledger
    current = ledger.live(model.name, env)
    target = ledger.find_version(model.name, env, to) if to else ledger.previous_good(model.name, env, current)
    if target is None or target.bento is None:
        what = f"no version v{to}" if to else "no earlier good version"
        raise UsageError(f"the ledger has {what} of {model.name} in {env}; see `modelctl status {model.name}`")
    return deploy(
        model,
        env,
        target.bento,
        target=target.target,
        approved=True,
        force=True,
        outcome="rolled_back",
        version=target.version,
        watch=False,  # going back to a version that was good: a rollback is never rolled back
    )


def _stop_everywhere(repo: Repo, name: str, env: str, records: list[Record]) -> list[str]:
    """Stop ``name`` in ``env`` on every target these records show it went to; a line per target."""
    done = []
    local_stopped = local.undeploy(repo, name, env)
    done.append(f"local: stopped {local_stopped.bento}" if local_stopped else "local: nothing running")
    applied = [r for r in records if r.env == env and r.url and r.outcome in ("deployed", "rolled_back")]
    kube = next((r for r in reversed(applied) if r.target == "kubernetes"), None)
    if kube is not None and kube.url:
        context, namespace, _ = kubernetes.parse_live_url(kube.url)
        removed = kubernetes.undeploy(name, env, namespace=namespace, context=context)
        done.append("kubernetes: " + ", ".join(f"{r.kind} {r.outcome}" for r in removed))
    cloud = next((r for r in reversed(applied) if r.target == "bentocloud"), None)
    if cloud is not None:
        cluster = None
        if (repo.model_dir(name) / "config.yaml").is_file():
            cluster = repo.config(name).deploy.bentocloud.cluster
        done.append(f"bentocloud: {bentocloud.undeploy(bentocloud.deployment_name(name, env), cluster=cluster)}")
    return done


def undeploy(repo: Repo, name: str, env: str) -> Record:
    """Stop ``name`` in ``env`` on every target it was deployed to (from the ledger: works for a removed model
    too). A target that cannot be reached fails loudly and nothing is recorded as undeployed."""
    state = State.of(repo)
    known_here, known_to_ledger = repo.model_names(), state.ledger.models()
    if name not in known_here and name not in known_to_ledger:
        raise UsageError(
            f"unknown model {name!r}: not in models/ and never deployed (the ledger knows "
            f"{', '.join(known_to_ledger[:10]) or 'no model'}{', ...' if len(known_to_ledger) > 10 else ''})"
        )
    with locked(repo, name, env) as held:
        records = state.ledger.records(name)
        done = _stop_everywhere(repo, name, env, records)
        live = state.ledger.live(name, env)
        record = Record(
            model=name,
            env=env,
            target=live.target if live else "local",
            outcome="undeployed",
            bento=live.bento if live else None,
            reason="; ".join(done),
        )
        _still_held(held, "recording the undeploy in the ledger")
        return state.ledger.append(record)


def export(model: Model, bento: str, out_path: Path) -> tuple[Path, str]:
    """``bentoml export`` of a gate-passed ``bento`` to ``out_path``; (file, sha256).

    The digest is what a deploy must be handed separately (a job output, the state store, `--sha256`):
    a checksum file beside the archive would prove only that both were copied together.
    """
    archive.check_tag(bento, model.name)
    missing = unverified(model, bento)
    if missing is not None:
        raise ReleaseError(missing)
    target = out_path.resolve()  # bentoml export/import need absolute paths
    target.parent.mkdir(parents=True, exist_ok=True)
    state = State.of(model.repo)
    cmd.run(
        platformenv.command(platformenv.python(state.root), "export", bento, target),
        input=platformenv.secrets_input(),
        what=f"bentoml export {bento}",
        env=platformenv.environment(state.bentoml_home),
    )
    return target, archive.sha256_of(target)


def import_file(model: Model, path: Path, sha256: str) -> tuple[str, str]:
    """Import an exported bento after checking it (digest handed over, every member, the tag from its own
    bento.yaml equal to the model); (bento tag, sha256)."""
    given = path
    path = path.resolve()
    if not path.is_file():
        raise UsageError(f"bento file {given} does not exist or is not a regular file")
    archive.inspect(path, model.name, sha256)  # refused before the model's environment is even created
    # The platform's BentoML imports it: a deploy job never needs the model's environment.
    state = State.of(model.repo)
    info = archive.import_bento(
        platformenv.python(state.root), path, model.name, sha256, env=platformenv.environment(state.bentoml_home)
    )
    return info.tag, info.sha256


def status_rows(repo: Repo, names: list[str]) -> list[dict[str, Any]]:
    state = State.of(repo)
    rows = []
    for name in repo.resolve(names):
        for env in ENVIRONMENTS:
            record = state.ledger.live(name, env)
            health = "not deployed"
            if record is not None and record.target == "local":
                try:
                    live = local.read_live(repo, name, env)
                except local.LiveRecordError as exc:
                    live, health = None, f"unknown ({exc})"
                else:
                    health = "up" if live is not None and live.running() and procs.healthy(live.url) else "down"
            elif record is not None:
                health = "unknown (remote target)"
            rows.append(
                {
                    "model": name,
                    "env": env,
                    "version": record.version if record else None,
                    "bento": record.bento if record else None,
                    "url": record.url if record else None,
                    "health": health,
                    "deployed_at": record.at if record else None,
                    "by": record.triggered_by if record else None,
                }
            )
    return rows
