"""What a served model needs to write its prediction log (``modelkit.predlog``): the store root and its environment.

Deploy targets add these to the model process's environment (the allow-list of ``processenv`` passes nothing else).
No credential is added: a local store is a folder; for an S3 store the model process gets write access to
``predictions/<model>/`` from the platform it runs on (a role or service account), never modelctl's own keys.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelctl.repo import Repo
from modelctl.state import State
from modelctl.statestore import ENV_URL, store_settings
from modelkit import predlog


def predlog_env(repo: Repo, env: str) -> dict[str, str]:
    """``MODELKIT_PREDLOG_URL`` (the state store root: its URL, or the local state folder), ``MODELKIT_ENV`` and,
    for an S3-compatible store, ``MODELKIT_PREDLOG_ENDPOINT_URL``."""
    url, endpoint, origin = store_settings(repo.root)
    if url is None:
        values = {predlog.ENV_URL: str(State.of(repo).root)}
    elif url.startswith("file://"):
        values = {predlog.ENV_URL: url.removeprefix("file://")}
    elif "://" not in url:  # a folder: relative to where the store setting says (as statestore.configured_store)
        base = Path.cwd() if origin == ENV_URL else repo.root
        values = {predlog.ENV_URL: str((base / url).resolve())}
    else:
        values = {predlog.ENV_URL: url}
        if endpoint:
            values[predlog.ENV_ENDPOINT] = endpoint
    values[predlog.ENV_NAME] = env
    if predlog.ENV_NICE in os.environ:  # the writer's priority, where the operator (or a test suite) set it
        values[predlog.ENV_NICE] = os.environ[predlog.ENV_NICE]
    return values


def active_file(repo: Repo, model: str, env: str) -> Path:
    """The file whose presence turns on the prediction log of a server started as a candidate for ``env``: modelctl
    creates it when that very process becomes the live deployment (`targets.local.adopt`)."""
    return State.of(repo).deploy_dir(model, env) / "predlog.active"


def candidate_env(repo: Repo, model: str, env: str) -> dict[str, str]:
    """``predlog_env`` for a candidate that may become the live deployment of ``env``: logging off until then."""
    flag = active_file(repo, model, env)
    flag.unlink(missing_ok=True)
    return {**predlog_env(repo, env), predlog.ENV_ACTIVE: str(flag)}
