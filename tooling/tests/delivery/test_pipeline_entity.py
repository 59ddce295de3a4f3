"""Issue 21's done-when for entity inputs: `modelctl pipeline` takes an entity model from a fresh clone to a live
endpoint that answers by id from the feature store (real Feast, real bentos, SQLite online store)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from modelctl.delivery import release
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import bake_example, copy_monorepo, fast_config, git
from tests.stand_ins import http_stand_in

pytestmark = pytest.mark.slow

MODEL = "churn_scorer"


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{url}/predict", data=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - a loopback URL of the test
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_an_entity_model_goes_from_a_fresh_clone_to_a_live_endpoint_answering_by_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("MODEL_FEATURE_REPO", "MODEL_FEATURE_DATA", "MODEL_FEATURE_ONLINE_STORE"):
        monkeypatch.delenv(name, raising=False)
    root = copy_monorepo(tmp_path / "repo")  # a fresh clone: committed files only, no feature data
    bake_example(root / "models", model_name="Churn Scorer", input="entity")
    fast_config(root, MODEL)
    monkeypatch.chdir(root)
    monkeypatch.delenv("MODELCTL_ALLOW_UNLOCKED", raising=False)  # as in a clone: the environment comes from the lock
    assert main(["lock", MODEL]) == 0  # feast and its dependencies resolve beside bentoml, pinned with hashes
    git(root, "add", "-A")
    git(root, "commit", "-qm", "an entity model")
    assert not (root / ".feast").exists()

    # No `features materialize` first: the pipeline loads the online store itself, as a newcomer expects (a review
    # found every request of a fresh clone's entity pipeline answered 404 when it did not).
    with http_stand_in([]) as slack:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        code = main(["pipeline", MODEL])
    try:
        out = capsys.readouterr().out
        assert code == 0, out[-3000:]
        for stage in ("features", "test", "train", "build", "load-test gate", "fuzz", "deploy staging"):
            assert stage in out
        assert "feature view(s) materialized into the online store" in out
        assert (root / ".feast" / "online_store.db").is_file()
        live = State.of(Repo(root)).ledger.live(MODEL, "staging")
        assert live is not None and live.url is not None

        status, answer = post(live.url, {"instances": [{"customer_id": 1042}, {"customer_id": 1037}]})
        assert status == 200, answer
        assert [p["label"] for p in answer] == ["churns", "stays"]
        status, answer = post(live.url, {"instances": [{"customer_id": 1042}, {"customer_id": 77}]})
        assert (status, answer) == (404, {"error": "customer_id 77 has no features in the feature store"})
        assert len(slack.requests) == 1 and "deployed" in slack.requests[0].body["text"]
    finally:
        release.undeploy(Repo(root), MODEL, "staging")
