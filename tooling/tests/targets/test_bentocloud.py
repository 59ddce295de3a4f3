"""The bentocloud target: authorization on every environment unless opted out; undeploy and the watch over
BentoCloud's REST API, against a real HTTP stand-in that records the calls."""

from __future__ import annotations

import json
import socket
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelctl import platformenv, watch
from modelctl.targets import bentocloud
from modelctl.targets.bentocloud import BentoCloudError
from modelkit import parse_config
from tests.targets.fakes import Call, FakeBento, Reply, serve

BASE = "name: churn_model\ndescription: d\nowner: o\nframework: sklearn\n"
KEY = "bc-api-key-for-tests"


def config(extra: str = "") -> Any:
    return parse_config(BASE + "deploy:\n  targets: [bentocloud]\n  instance_type: cpu.2\n" + extra)


# --- render ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["staging", "production"])
def test_every_environment_requires_a_token_by_default(env: str) -> None:
    document = bentocloud.render(config(), "churn_model:abc123", env, "ChurnModel")
    assert document == {
        "name": f"churn-model-{env}",
        "bento": "churn_model:abc123",
        "access_authorization": True,
        "envs": [{"name": "MODEL_ENV", "value": env}],
        "services": {"ChurnModel": {"instance_type": "cpu.2", "scaling": {"min_replicas": 1, "max_replicas": 3}}},
    }


def test_an_environment_can_opt_out_of_authorization() -> None:
    opted = config(
        "  environments: {staging: {public: true}, production: {approval: true}}\n  bentocloud: {cluster: eu}\n"
    )
    staging = bentocloud.render(opted, "churn_model:abc123", "staging", "ChurnModel")
    production = bentocloud.render(opted, "churn_model:abc123", "production", "ChurnModel")
    assert staging["access_authorization"] is False and production["access_authorization"] is True
    assert staging["cluster"] == production["cluster"] == "eu"


def test_the_written_file_is_plain_yaml(tmp_path: Path) -> None:
    document = bentocloud.render(config(), "churn_model:abc123", "staging", "ChurnModel")
    text = bentocloud.write(document, tmp_path / "bentocloud.yaml").read_text()
    assert yaml.safe_load(text) == document and "&id" not in text


# --- deploy ---------------------------------------------------------------------------------------


def fake_python(tmp_path: Path, script: str) -> Path:
    path = tmp_path / "python"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_deploy_without_credentials_does_not_run_bentoml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENTO_CLOUD_API_KEY", raising=False)
    marker = tmp_path / "ran"
    python = fake_python(tmp_path, f"touch {marker}\n")
    path = bentocloud.write({"name": "x"}, tmp_path / "bentocloud.yaml")
    with pytest.raises(BentoCloudError, match="BENTO_CLOUD_API_KEY is not set: rendered"):
        bentocloud.deploy(python, path, {}, {})
    assert not marker.exists()


def test_a_failing_bentoml_deploy_is_reported_with_its_output(tmp_path: Path) -> None:
    python = fake_python(tmp_path, 'echo "Error: [deployment] create failed: quota exceeded" >&2\nexit 3\n')
    path = bentocloud.write({"name": "x"}, tmp_path / "bentocloud.yaml")
    with pytest.raises(BentoCloudError, match="bentoml deploy exited 3: Error: .deployment. create failed: quota"):
        bentocloud.deploy(python, path, {}, {"BENTO_CLOUD_API_KEY": KEY})


def test_bentoml_deploy_gets_bentoclouds_credentials_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call runs the given (platform) interpreter isolated, through the sealing wrapper, with the token and
    endpoint on stdin only: not in its environment (so not in its /proc entry), and nothing else: not the state
    store's keys, not GitHub's token, not Slack's webhook (issue 20 item 4)."""
    for name, value in {
        "AWS_SECRET_ACCESS_KEY": "store-secret",  # pragma: allowlist secret
        "GITHUB_TOKEN": "ghs_forthetestsonly",  # pragma: allowlist secret
        "SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/T0/B0/x",
        "BENTO_CLOUD_API_KEY": KEY,
        "BENTO_CLOUD_API_ENDPOINT": "https://cloud.example",
    }.items():
        monkeypatch.setenv(name, value)
    seen = tmp_path / "seen"
    python = fake_python(tmp_path, f'echo "$@" > {seen}.argv\nenv > {seen}.env\ncat > {seen}.stdin\n')
    path = bentocloud.write({"name": "x"}, tmp_path / "bentocloud.yaml")
    env = platformenv.environment(tmp_path / "bentoml")
    bentocloud.deploy(python, path, env, bentocloud.credentials())
    argv = Path(f"{seen}.argv").read_text().split()
    assert argv == ["-I", str(platformenv.WRAPPER), "deploy", "-f", str(path)]
    variables = dict(line.split("=", 1) for line in Path(f"{seen}.env").read_text().splitlines() if "=" in line)
    assert variables["BENTOML_HOME"] == str(tmp_path / "bentoml")
    assert not {"AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "SLACK_WEBHOOK_URL", "BENTO_CLOUD_API_KEY"} & variables.keys()
    handed = json.loads(Path(f"{seen}.stdin").read_text())
    assert handed == {"BENTO_CLOUD_API_KEY": KEY, "BENTO_CLOUD_API_ENDPOINT": "https://cloud.example"}


@pytest.mark.slow
def test_the_platforms_bentoml_deploys_against_the_endpoint_with_the_token(tmp_path: Path) -> None:
    """The real `bentoml deploy` of the platform's environment (built from its hashed lock), pointed at a
    stand-in that refuses the token: the request carried it, and the refusal is reported."""
    calls: list[Call] = []

    def refuse(call: Call) -> Reply:
        calls.append(call)
        return Reply(401, {"error": "invalid api token"})

    path = bentocloud.write(
        bentocloud.render(config(), "churn_model:abc123", "staging", "ChurnModel"), tmp_path / "bentocloud.yaml"
    )
    python = platformenv.python(tmp_path / "state")
    with serve(refuse) as server:
        credentials = {"BENTO_CLOUD_API_KEY": KEY, "BENTO_CLOUD_API_ENDPOINT": server.url}
        with pytest.raises(BentoCloudError, match="bentoml deploy exited"):
            bentocloud.deploy(python, path, platformenv.environment(tmp_path / "bentoml"), credentials)
    assert calls and all(call.headers.get("x-yatai-api-token") == KEY for call in calls)


# --- undeploy over the REST API ---------------------------------------------------------------------


class Api:
    """BentoCloud's deployment routes as BentoML 1.4's client calls them."""

    def __init__(self, deployments: dict[str, dict[str, Any]], status: dict[str, int] | None = None) -> None:
        self.deployments = deployments
        self.status = status or {}
        self.bento = FakeBento()

    def __call__(self, call: Call) -> Reply:
        path = call.path.split("?")[0]
        if path == "/metrics":
            if call.headers.get("authorization") != f"Bearer {KEY}":
                return Reply(401, {"error": "unauthorized"})
            return self.bento(call)
        if call.headers.get("x-yatai-api-token") != KEY:
            return Reply(401, {"error": "invalid api token"})
        if call.method in self.status:
            return Reply(self.status[call.method], {"error": "injected"})
        name = path.removeprefix("/api/v2/deployments/").removesuffix("/terminate")
        if name not in self.deployments:
            return Reply(404, {"error": "record not found"})
        if call.method == "POST" and path.endswith("/terminate"):
            self.deployments[name]["status"] = "terminating"
            return Reply(200, self.deployments[name])
        if call.method == "DELETE":
            return Reply(200, self.deployments.pop(name))
        return Reply(200, self.deployments[name])


def env_for(url: str) -> dict[str, str]:
    return {"BENTO_CLOUD_API_KEY": KEY, "BENTO_CLOUD_API_ENDPOINT": url}


def test_undeploy_terminates_then_deletes() -> None:
    api = Api({"churn-model-staging": {"name": "churn-model-staging", "status": "running"}})
    with serve(api) as server:
        outcome = bentocloud.undeploy_config(config("  bentocloud: {cluster: eu}\n"), "staging", env_for(server.url))
    assert outcome == "deleted" and api.deployments == {}
    assert [(c.method, c.path) for c in server.calls] == [
        ("POST", "/api/v2/deployments/churn-model-staging/terminate?cluster=eu"),
        ("DELETE", "/api/v2/deployments/churn-model-staging?cluster=eu"),
    ]
    assert all(c.headers["x-yatai-api-token"] == KEY for c in server.calls)


def test_undeploy_of_a_deployment_that_is_gone_is_fine() -> None:
    with serve(Api({})) as server:
        assert bentocloud.undeploy("churn-model-staging", environ=env_for(server.url)) == "absent"
        assert len(server.calls) == 1


def test_undeploy_without_credentials_fails_clearly() -> None:
    with pytest.raises(BentoCloudError, match="BENTO_CLOUD_API_KEY is not set: cannot undeploy churn-model-staging"):
        bentocloud.undeploy("churn-model-staging", environ={})


def test_undeploy_with_refused_credentials_fails_clearly() -> None:
    with serve(Api({"churn-model-staging": {}})) as server:
        environ = {**env_for(server.url), "BENTO_CLOUD_API_KEY": "wrong"}  # pragma: allowlist secret
        with pytest.raises(BentoCloudError, match=r"refused to terminate deployment churn-model-staging \(HTTP 401\)"):
            bentocloud.undeploy("churn-model-staging", environ=environ)


def test_undeploy_fails_clearly_when_bentocloud_cannot_be_reached() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        BentoCloudError, match=f"cannot reach BentoCloud at http://127.0.0.1:{port} to undeploy churn-model-staging"
    ):
        bentocloud.undeploy("churn-model-staging", environ=env_for(f"http://127.0.0.1:{port}"))


def test_a_failed_delete_after_terminate_is_reported() -> None:
    api = Api({"churn-model-staging": {}}, status={"DELETE": 500})
    with (
        serve(api) as server,
        pytest.raises(
            BentoCloudError, match=r"could not delete deployment churn-model-staging \(it is terminated\): HTTP 500"
        ),
    ):
        bentocloud.undeploy("churn-model-staging", environ=env_for(server.url))


# --- the watch ------------------------------------------------------------------------------------


def test_the_watch_scrapes_the_deployment_endpoint_with_the_token() -> None:
    api = Api({})
    clock = [0.0]
    with serve(api) as server:
        api.deployments["churn-model-production"] = {"name": "churn-model-production", "urls": [server.url]}

        def sleep(seconds: float) -> None:
            for _ in range(10):
                api.bento(Call("POST", "/predict", {}, None))
            clock[0] += seconds

        scraper = bentocloud.metrics_scraper("churn-model-production", environ=env_for(server.url))
        verdict = watch.watch(scraper, watch.Limits(), sleep=sleep, clock=lambda: clock[0])
    assert verdict.passed and verdict.judged and verdict.requests == 60
    metrics = [c for c in server.calls if c.path == "/metrics"]
    assert metrics and all(c.headers["authorization"] == f"Bearer {KEY}" for c in metrics)


def test_the_watch_says_why_it_cannot_start() -> None:
    with serve(Api({})) as server:
        with pytest.raises(watch.WatchError, match="BentoCloud has no deployment churn-model-production"):
            bentocloud.metrics_scraper("churn-model-production", environ=env_for(server.url))
    with pytest.raises(watch.WatchError, match="BENTO_CLOUD_API_KEY is not set: cannot read deployment"):
        bentocloud.metrics_scraper("churn-model-production", environ={})
