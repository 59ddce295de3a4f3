"""The kubernetes target: restricted-profile manifests, plain YAML; undeploy, metrics, rollouts through the API server.

The API server is a real HTTP(S) server on 127.0.0.1 that records every call; the kubeconfig is a real
file that names it. Where kubectl applies, a small kubectl stand-in does it through that same server.
"""

from __future__ import annotations

import base64
import copy
import datetime
import os
import re
import socket
import ssl
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from modelctl import watch
from modelctl.targets import kubernetes
from modelctl.targets.kubernetes import KubernetesError, Removed
from modelkit import parse_config
from tests.targets.fakes import Call, FakeBento, Reply, Server, serve
from tests.targets.pss import violations

BASE = "name: churn_model\ndescription: d\nowner: o\nframework: sklearn\n"
K8S = BASE + (
    "deploy:\n  targets: [local, kubernetes, bentocloud]\n"
    "  resources: {cpu: 500m, memory: 2Gi, gpu: 1}\n"
    "  scaling: {min_replicas: 2, max_replicas: 7, target_cpu_percent: 60}\n"
    "  kubernetes: {namespace: ml, image_repository: ghcr.io/acme/models, context: prod-cluster}\n"
)
BENTO = "churn_model:abc123"
NAME = "churn-model-staging"
TOKEN = "t0ken-for-tests"


@pytest.fixture
def manifests() -> list[dict[str, Any]]:
    return kubernetes.render(parse_config(K8S), BENTO, "staging")


def pod_of(manifests: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    template = manifests[0]["spec"]["template"]
    return template["spec"], template["metadata"].get("annotations") or {}


# --- manifests ----------------------------------------------------------------------------------


def test_an_invalid_manifest_is_caught_by_the_validator(manifests: list[dict[str, Any]]) -> None:
    broken = dict(manifests[0])
    broken["spec"] = {**broken["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_the_kubernetes_target_requires_an_image_repository() -> None:
    with pytest.raises(ValueError, match="kubernetes.image_repository must be set"):
        parse_config(BASE + "deploy: {targets: [kubernetes]}\n")


def test_apply_to_an_unknown_context_fails_clearly(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    import shutil

    path = kubernetes.write(manifests, tmp_path / "k8s.yaml")
    config = kubeconfig(tmp_path, "http://127.0.0.1:9", {"token": TOKEN})
    expected = (
        "kubeconfig context 'no-such-context' is not in .*: cannot reach the cluster"
        if shutil.which("kubectl")
        else "kubectl is not installed; the manifests are in"
    )
    with pytest.raises(KubernetesError, match=expected):
        kubernetes.apply(path, "no-such-context", kubeconfig=config)


@pytest.mark.parametrize("version", ["1.30", "1.33"])
def test_every_manifest_is_strictly_valid_kubernetes(manifests: list[dict[str, Any]], version: str) -> None:
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_pod_passes_the_restricted_pod_security_standard(manifests: list[dict[str, Any]]) -> None:
    assert violations(*pod_of(manifests)) == []


def test_the_pod_is_locked_down_beyond_the_standard(manifests: list[dict[str, Any]]) -> None:
    spec, _ = pod_of(manifests)
    assert spec["automountServiceAccountToken"] is False
    assert spec["securityContext"]["runAsUser"] == kubernetes.BENTO_UID != 0
    container = spec["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # What BentoML 1.4 writes while serving goes to emptyDirs: /tmp (UNIX sockets) and its home
    # (stores, prometheus_multiproc_dir); the bento under /home/bentoml/bento is only read.
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert set(mounts) == {"/tmp", kubernetes.RUNTIME_HOME}
    assert all("emptyDir" in volumes[name] for name in mounts.values())
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["BENTOML_HOME"] == kubernetes.RUNTIME_HOME and not kubernetes.RUNTIME_HOME.startswith(
        "/home/bentoml/bento"
    )


def test_values_come_from_config(manifests: list[dict[str, Any]]) -> None:
    deployment, service, hpa, pdb = manifests
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/models/churn_model:abc123"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert deployment["metadata"] == service["metadata"] == hpa["metadata"] == pdb["metadata"]
    assert deployment["metadata"]["namespace"] == "ml" and deployment["metadata"]["name"] == NAME
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "modelctl"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    assert service["spec"]["selector"] == pdb["spec"]["selector"]["matchLabels"]


def test_the_yaml_is_plain_no_anchors_or_aliases(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    text = kubernetes.write(manifests, tmp_path / "k8s.yaml").read_text()
    events = list(yaml.parse(text))
    assert not [e for e in events if isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None)]
    assert "&id" not in text and "*id" not in text
    assert list(yaml.safe_load_all(text)) == manifests
    # Even a caller that shares one dict between documents gets plain YAML.
    shared = {"app": "x"}
    assert "&" not in kubernetes.dump([{"metadata": {"labels": shared}}, {"metadata": {"labels": shared}}])


def test_documents_share_no_objects(manifests: list[dict[str, Any]]) -> None:
    seen: dict[int, str] = {}

    def walk(value: Any, where: str) -> None:
        if isinstance(value, (dict, list)):
            assert id(value) not in seen, f"{where} is the same object as {seen.get(id(value))}"
            seen[id(value)] = where
            for key, item in value.items() if isinstance(value, dict) else enumerate(value):
                walk(item, f"{where}.{key}")

    for index, manifest in enumerate(manifests):
        walk(manifest, f"[{index}]")


# --- the checker itself: every control catches its violation ----------------------------------------


def _container(spec: dict[str, Any]) -> dict[str, Any]:
    return spec["containers"][0]


MUTATIONS: dict[str, tuple[Any, str]] = {
    "hostProcess": (lambda s, a: s["securityContext"].update(windowsOptions={"hostProcess": True}), "HostProcess"),
    "hostNetwork": (lambda s, a: s.update(hostNetwork=True), "Host Namespaces: spec.hostNetwork"),
    "hostPID": (lambda s, a: s.update(hostPID=True), "Host Namespaces: spec.hostPID"),
    "hostIPC": (lambda s, a: s.update(hostIPC=True), "Host Namespaces: spec.hostIPC"),
    "privileged": (lambda s, a: _container(s)["securityContext"].update(privileged=True), "Privileged Containers"),
    "capability outside baseline": (
        lambda s, a: _container(s)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
        "Capabilities: spec.containers[0].securityContext.capabilities.add must not add SYS_ADMIN",
    ),
    "hostPath": (lambda s, a: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "HostPath Volumes"),
    "hostPort": (lambda s, a: _container(s)["ports"][0].update(hostPort=80), "Host Ports"),
    "apparmor annotation": (
        lambda s, a: a.update({"container.apparmor.security.beta.kubernetes.io/bento": "unconfined"}),
        "AppArmor: metadata.annotations",
    ),
    "apparmor field": (
        lambda s, a: s["securityContext"].update(appArmorProfile={"type": "Unconfined"}),
        "AppArmor: spec.securityContext.appArmorProfile",
    ),
    "selinux type": (lambda s, a: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}), "SELinux"),
    "selinux user": (lambda s, a: s["securityContext"].update(seLinuxOptions={"user": "root"}), "SELinux"),
    "procMount": (lambda s, a: _container(s)["securityContext"].update(procMount="Unmasked"), "/proc Mount Type"),
    "sysctl": (
        lambda s, a: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "Sysctls",
    ),
    "seccomp unconfined": (
        lambda s, a: _container(s)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
        "must not be Unconfined",
    ),
    "volume type": (
        lambda s, a: s["volumes"].append({"name": "n", "nfs": {"server": "x", "path": "/"}}),
        "Volume Types",
    ),
    "privilege escalation unset": (
        lambda s, a: _container(s)["securityContext"].pop("allowPrivilegeEscalation"),
        "Privilege Escalation",
    ),
    "runAsNonRoot unset": (
        lambda s, a: (s["securityContext"].pop("runAsNonRoot"), _container(s)["securityContext"].pop("runAsNonRoot")),
        "Running as Non-root:",
    ),
    "runAsNonRoot false": (
        lambda s, a: _container(s)["securityContext"].update(runAsNonRoot=False),
        "Running as Non-root:",
    ),
    "runAsUser 0": (lambda s, a: s["securityContext"].update(runAsUser=0), "Running as Non-root user"),
    "container runAsUser 0": (
        lambda s, a: _container(s)["securityContext"].update(runAsUser=0),
        "Running as Non-root user: spec.containers[0]",
    ),
    "seccomp unset": (lambda s, a: s["securityContext"].pop("seccompProfile"), "Seccomp: spec.containers[0]"),
    "capabilities not dropped": (
        lambda s, a: _container(s)["securityContext"].pop("capabilities"),
        "capabilities.drop must include ALL",
    ),
    "capability outside restricted": (
        lambda s, a: _container(s)["securityContext"]["capabilities"].update(add=["CHOWN"]),
        "may only add NET_BIND_SERVICE",
    ),
    "init container": (
        lambda s, a: s.update(initContainers=[{"name": "init", "image": "busybox"}]),
        "spec.initContainers[0].securityContext.allowPrivilegeEscalation",
    ),
}


@pytest.mark.parametrize("case", sorted(MUTATIONS))
def test_the_checker_catches_each_control(manifests: list[dict[str, Any]], case: str) -> None:
    spec, annotations = copy.deepcopy(pod_of(manifests))
    mutate, expected = MUTATIONS[case]
    mutate(spec, annotations)
    found = violations(spec, annotations)
    assert any(expected in line for line in found), found


# --- the API server stand-in ---------------------------------------------------------------------

PATHS = {
    "HorizontalPodAutoscaler": f"/apis/autoscaling/v2/namespaces/ml/horizontalpodautoscalers/{NAME}",
    "Deployment": f"/apis/apps/v1/namespaces/ml/deployments/{NAME}",
    "Service": f"/api/v1/namespaces/ml/services/{NAME}",
    "PodDisruptionBudget": f"/apis/policy/v1/namespaces/ml/poddisruptionbudgets/{NAME}",
}


class ApiServer:
    """Objects by path; GET/POST/PUT/DELETE like the API server (Status bodies, 404 when absent, 409 on a stale
    resourceVersion, generation bumped by a spec change), bearer auth. ``controller`` stands in for the Deployment
    controller and the kubelets: it updates the Deployment's status and the pods on each read of the Deployment."""

    def __init__(
        self,
        objects: dict[str, dict[str, Any]],
        pods: dict[str, FakeBento] | None = None,
        controller: Controller | None = None,
    ) -> None:
        self.objects = objects
        for item in objects.values():
            item["metadata"].setdefault("generation", 1)
            item["metadata"].setdefault("resourceVersion", "1")
        self.pods = pods or {}
        self.pod_items: list[dict[str, Any]] | None = None
        self.controller = controller
        self.forbidden: set[str] = set()
        self.read_only: set[str] = set()  # paths that may be read but not written (403)
        self.versions = 1

    def __call__(self, call: Call) -> Reply:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"kind": "Status", "message": "Unauthorized", "code": 401})
        path = call.path.split("?")[0]
        if path == "/api/v1/namespaces/ml/pods":
            if self.pod_items is not None:
                return Reply(200, {"kind": "PodList", "items": self.pod_items})
            items = [{"metadata": {"name": n}, "status": {"phase": "Running"}} for n in self.pods]
            return Reply(200, {"kind": "PodList", "items": items})
        if path.startswith("/api/v1/namespaces/ml/pods/") and path.endswith("/proxy/metrics"):
            pod = path.split("/")[6].split(":")[0]
            return Reply(200, self.pods[pod].metrics()) if pod in self.pods else Reply(404, {"message": "no pod"})
        if path in self.forbidden or (path in self.read_only and call.method in ("POST", "PUT", "DELETE")):
            return Reply(403, {"kind": "Status", "message": f"cannot {call.method.lower()} {path}", "code": 403})
        if call.method == "POST" and path in COLLECTIONS.values():
            created = copy.deepcopy(call.body)
            where = f"{path}/{created['metadata']['name']}"
            if where in self.objects:
                return Reply(409, {"kind": "Status", "message": "already exists", "code": 409})
            self.versions += 1
            created["metadata"].update(uid=f"uid-{created['kind']}-{self.versions}", generation=1)
            created["metadata"]["resourceVersion"] = str(self.versions)
            self.objects[where] = created
            return Reply(201, created)
        if path not in self.objects:
            return Reply(404, {"kind": "Status", "message": "not found", "code": 404})
        current = self.objects[path]
        if call.method == "GET":
            if self.controller is not None and current["kind"] == "Deployment":
                self.controller(self, current)
            return Reply(200, current)
        if call.method == "PUT":
            replaced = copy.deepcopy(call.body)
            stale = replaced["metadata"].get("resourceVersion") not in (None, current["metadata"]["resourceVersion"])
            if stale:
                return Reply(409, {"kind": "Status", "message": "the object has been modified", "code": 409})
            self.versions += 1
            generation = current["metadata"]["generation"] + (replaced.get("spec") != current.get("spec"))
            replaced["metadata"].update(uid=current["metadata"]["uid"], generation=generation)
            replaced["metadata"]["resourceVersion"] = str(self.versions)
            if "status" in current:
                replaced["status"] = current["status"]
            self.objects[path] = replaced
            return Reply(200, replaced)
        if call.method == "DELETE":
            expected = ((call.body or {}).get("preconditions") or {}).get("uid")
            if expected and expected != self.objects[path]["metadata"]["uid"]:
                return Reply(409, {"kind": "Status", "message": "Precondition failed: UID mismatch", "code": 409})
            self.objects.pop(path)
            return Reply(200, {"kind": "Status", "status": "Success"})
        return Reply(405, {"message": "method not allowed"})


COLLECTIONS = {kind: path.rsplit("/", 1)[0] for kind, path in PATHS.items()}


def deployed_objects(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {PATHS[m["kind"]]: {**m, "metadata": {**m["metadata"], "uid": f"uid-{m['kind']}"}} for m in manifests}


def kubeconfig(tmp_path: Path, server: str, user: dict[str, Any], cluster: dict[str, Any] | None = None) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": server, **(cluster or {})}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "prod-cluster", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "prod-cluster",
            }
        )
    )
    return path


@contextmanager
def api_server(api: ApiServer) -> Iterator[Server]:
    with serve(api) as server:
        yield server


def test_undeploy_deletes_every_object_through_the_api(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    api = ApiServer(deployed_objects(manifests))
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        removed = kubernetes.undeploy(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
        )
    assert removed == [
        Removed("HorizontalPodAutoscaler", NAME, "deleted"),
        Removed("Deployment", NAME, "deleted"),
        Removed("Service", NAME, "deleted"),
        Removed("PodDisruptionBudget", NAME, "deleted"),
    ]
    deletes = [c for c in server.calls if c.method == "DELETE"]
    assert [c.path for c in deletes] == list(PATHS.values())  # the HPA first
    assert all(c.headers["authorization"] == f"Bearer {TOKEN}" for c in server.calls)
    assert deletes[1].body == {
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "propagationPolicy": "Foreground",
        "preconditions": {"uid": "uid-Deployment"},
    }
    assert api.objects == {}


def test_undeploy_of_what_is_already_gone_is_fine(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    objects = deployed_objects(manifests)
    objects.pop(PATHS["HorizontalPodAutoscaler"])
    with api_server(ApiServer(objects)) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        removed = kubernetes.undeploy(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
        )
        again = kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config)
    assert [r.outcome for r in removed] == ["absent", "deleted", "deleted", "deleted"]
    assert [r.outcome for r in again] == ["absent"] * 4


def test_undeploy_leaves_objects_it_did_not_create_alone(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    objects = deployed_objects(manifests)
    objects[PATHS["Service"]]["metadata"]["labels"] = {"app": "someone-else"}
    api = ApiServer(objects)
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        with pytest.raises(KubernetesError, match=f"Service ml/{NAME} exists but was not deployed by modelctl"):
            kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config)
    assert list(api.objects) == [PATHS["Service"]]  # the others were deleted, the foreign one kept


def test_undeploy_fails_loudly_when_not_allowed(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    api = ApiServer(deployed_objects(manifests))
    api.forbidden.add(PATHS["Deployment"])
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        with pytest.raises(
            KubernetesError,
            match=r"incomplete: reading Deployment ml/churn-model-staging: "
            r"context 'prod-cluster' is not allowed to \(403 Forbidden",
        ):
            kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config)


def test_undeploy_with_wrong_credentials_fails_clearly(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    with api_server(ApiServer(deployed_objects(manifests))) as server:
        config = kubeconfig(tmp_path, server.url, {"token": "wrong"})
        with pytest.raises(KubernetesError, match="refused the credentials of context 'prod-cluster' \\(401\\)"):
            kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config)


def test_undeploy_fails_clearly_when_the_cluster_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{port}", {"token": TOKEN})
    with pytest.raises(
        KubernetesError,
        match=f"cannot reach the Kubernetes API server http://127.0.0.1:{port} "
        r"\(context 'prod-cluster'\): ConnectError",
    ):
        kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config)


def test_undeploy_with_an_unknown_context_or_none_fails_clearly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = kubeconfig(tmp_path, "http://127.0.0.1:9", {"token": TOKEN})
    with pytest.raises(KubernetesError, match="kubeconfig context 'elsewhere' is not in .*kubeconfig: cannot reach"):
        kubernetes.undeploy("churn_model", "staging", namespace="ml", context="elsewhere", kubeconfig=config)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(KubernetesError, match="is not in .*missing"):
        kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster")
    no_context = parse_config(BASE + "deploy: {targets: [kubernetes], kubernetes: {image_repository: r.io/x}}\n")
    with pytest.raises(KubernetesError, match="deploy.kubernetes.context is not set in models/churn_model/config.yaml"):
        kubernetes.undeploy_config(no_context, "staging")


def test_undeploy_config_uses_the_models_namespace_and_context(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    with api_server(ApiServer(deployed_objects(manifests))) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        removed = kubernetes.undeploy_config(parse_config(K8S), "staging", kubeconfig=config)
    assert [r.outcome for r in removed] == ["deleted"] * 4


def test_exec_credentials_are_used(manifests: list[dict[str, Any]], tmp_path: Path) -> None:
    credential = {"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": {"token": TOKEN}}
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [
                "-c",
                f"import json, os; assert os.environ['PLUGIN_ENV'] == 'set'; print(json.dumps({credential!r}))",
            ],
            "env": [{"name": "PLUGIN_ENV", "value": "set"}],
        }
    }
    with api_server(ApiServer(deployed_objects(manifests))) as server:
        config = kubeconfig(tmp_path, server.url, user)
        removed = kubernetes.undeploy(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
        )
    assert [r.outcome for r in removed] == ["deleted"] * 4


# --- reading the kubeconfig ------------------------------------------------------------------------


def test_a_kubeconfig_with_anchors_is_refused_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "clusters:\n- name: c\n  cluster: &shared {server: 'http://127.0.0.1:9'}\n"
        "contexts:\n- name: prod-cluster\n  context: {cluster: c, user: u}\n"
        f"users:\n- name: u\n  user: {{token: {TOKEN}}}\n"
    )
    with pytest.raises(KubernetesError, match=f"^cannot use kubeconfig {re.escape(str(path))}:3: YAML anchor &shared"):
        kubernetes.access("prod-cluster", kubeconfig=path)


def test_a_merge_key_bomb_in_a_kubeconfig_is_refused_before_it_expands(tmp_path: Path) -> None:
    # 43 million keys for a loader that expands merge keys (issue 20 item 12); refused at the first anchor.
    lines = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 9)]
    path = kubeconfig(tmp_path, "http://127.0.0.1:9", {"token": TOKEN})
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    with pytest.raises(KubernetesError, match="YAML anchor &a0 is not allowed"):
        kubernetes.access("prod-cluster", kubeconfig=path)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda k: k.update(contexts={"prod-cluster": {}}), "contexts: expected a list, got dict", id="section"
        ),
        pytest.param(
            lambda k: k["contexts"][0].update(context=["c", "u"]),
            "context 'prod-cluster': context: expected a mapping, got list",
            id="context",
        ),
        pytest.param(
            lambda k: k["contexts"][0]["context"].update(cluster=["c"]),
            "names cluster ['c'], which is not in",
            id="cluster-name",
        ),
        pytest.param(
            lambda k: k["clusters"][0].update(cluster="http://x"),
            "cluster 'c': cluster: expected a mapping, got str",
            id="cluster",
        ),
        pytest.param(
            lambda k: k["clusters"][0]["cluster"].update({"certificate-authority": ["ca"]}),
            "cluster 'c': certificate-authority: expected a string, got list",
            id="ca-file",
        ),
        pytest.param(
            lambda k: k["users"][0].update(user=[TOKEN]), "user 'u': user: expected a mapping, got list", id="user"
        ),
        pytest.param(
            lambda k: k["users"][0]["user"].update(tokenFile=5),
            "user 'u': tokenFile: expected a string, got int",
            id="token-file",
        ),
        pytest.param(
            lambda k: k["users"][0].update(user={"exec": {"command": "true", "args": "--token"}}),
            "exec credential args: expected a list, got str",
            id="exec-args",
        ),
    ],
)
def test_a_kubeconfig_value_of_the_wrong_type_is_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    path = kubeconfig(tmp_path, "https://127.0.0.1:9", {"token": TOKEN})
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(KubernetesError) as raised:
        kubernetes.access("prod-cluster", kubeconfig=path)
    assert expected in str(raised.value) and str(path) in str(raised.value)


# --- TLS with the cluster's CA from the kubeconfig ------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, bytes]:
    """A self-signed CA and a server certificate for 127.0.0.1 (cert file, key file, CA PEM)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_file, key_file = folder / "server.pem", folder / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file, ca.public_bytes(serialization.Encoding.PEM)


def server_tls(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    return context


def test_the_clusters_ca_from_the_kubeconfig_is_trusted(
    manifests: list[dict[str, Any]], tmp_path: Path, tls_files: tuple[Path, Path, bytes]
) -> None:
    cert, key, ca = tls_files
    with serve(ApiServer(deployed_objects(manifests)), tls=server_tls(cert, key)) as server:
        assert server.url.startswith("https://")
        trusted = kubeconfig(
            tmp_path, server.url, {"token": TOKEN}, {"certificate-authority-data": base64.b64encode(ca).decode()}
        )
        removed = kubernetes.undeploy(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=trusted
        )
        assert [r.outcome for r in removed] == ["deleted"] * 4
        # Without the cluster's CA the server is not trusted: the handshake fails, no request carries the token.
        (tmp_path / "other").mkdir()
        untrusted = kubeconfig(tmp_path / "other", server.url, {"token": TOKEN})
        calls = len(server.calls)
        with pytest.raises(
            KubernetesError, match="cannot reach the Kubernetes API server https://.*CERTIFICATE_VERIFY_FAILED"
        ):
            kubernetes.undeploy("churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=untrusted)
        assert len(server.calls) == calls


def test_a_ca_file_relative_to_the_kubeconfig_is_found(
    manifests: list[dict[str, Any]], tmp_path: Path, tls_files: tuple[Path, Path, bytes]
) -> None:
    cert, key, ca = tls_files
    (tmp_path / "ca.crt").write_bytes(ca)
    (tmp_path / "token").write_text(TOKEN + "\n")
    with serve(ApiServer(deployed_objects(manifests)), tls=server_tls(cert, key)) as server:
        config = kubeconfig(tmp_path, server.url, {"tokenFile": "token"}, {"certificate-authority": "ca.crt"})
        removed = kubernetes.undeploy(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
        )
    assert [r.outcome for r in removed] == ["deleted"] * 4


# --- the watch through the API server ---------------------------------------------------------------


def test_the_watch_scrapes_every_pod_through_the_api_server(tmp_path: Path) -> None:
    pods = {"churn-model-staging-7d9-a": FakeBento(fail_after=5), "churn-model-staging-7d9-b": FakeBento()}
    api = ApiServer({}, pods)
    clock = [0.0]

    def sleep(seconds: float) -> None:
        for pod in pods.values():
            for _ in range(10):
                pod(Call("POST", "/predict", {}, None))
        clock[0] += seconds

    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        scraper = kubernetes.metrics_scraper(
            "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
        )
        verdict = watch.watch(scraper, watch.Limits(), sleep=sleep, clock=lambda: clock[0])
    assert not verdict.passed and (verdict.requests, verdict.errors) == (20, 5)
    listed = [c for c in server.calls if c.path.startswith("/api/v1/namespaces/ml/pods?")]
    assert listed and "labelSelector=app.kubernetes.io/instance%3Dchurn-model-staging" in listed[0].path
    assert any(
        c.path == "/api/v1/namespaces/ml/pods/churn-model-staging-7d9-a:3000/proxy/metrics" for c in server.calls
    )


def test_the_watch_says_when_the_cluster_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{port}", {"token": TOKEN})
    scraper = kubernetes.metrics_scraper(
        "churn_model", "staging", namespace="ml", context="prod-cluster", kubeconfig=config
    )
    with pytest.raises(watch.WatchError, match="cannot reach the Kubernetes API server"):
        watch.watch(scraper, watch.Limits(), sleep=lambda s: None)


def test_the_live_url_round_trips_any_context_name() -> None:
    context = "arn:aws:eks:eu-west-1:123456789012:cluster/prod"
    url = kubernetes.live_url(context, "ml", "churn_model", "production")
    assert url == "kubernetes://arn%3Aaws%3Aeks%3Aeu-west-1%3A123456789012%3Acluster%2Fprod/ml/churn-model-production"
    assert kubernetes.parse_live_url(url) == (context, "ml", "churn-model-production")
    with pytest.raises(KubernetesError, match="is not a kubernetes://CONTEXT/NAMESPACE/NAME"):
        kubernetes.parse_live_url("kubernetes://ctx/ml/kubernetes/extra")


# --- one image per bento, deployed by digest (issue 13 item 6) --------------------------------------------------


def test_manifests_refer_to_the_pushed_image_by_digest() -> None:
    config = parse_config(
        "name: churn_model\ndescription: d\nowner: o\nframework: sklearn\n"
        "deploy: {targets: [kubernetes], kubernetes: {image_repository: ghcr.io/acme/models}}\n"
    )
    digest = "ghcr.io/acme/models/churn_model@sha256:" + "ab" * 32
    (deployment, *_) = kubernetes.render(config, "churn_model:v1", "production", image_ref=digest)
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == digest
    default = kubernetes.render(config, "churn_model:v1", "production")[0]
    assert default["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/models/churn_model:v1"


def test_the_digest_comes_from_dockers_repo_digests_or_the_deploy_is_refused() -> None:
    tag = "registry.local:5000/acme/churn_model:v1"
    pushed = f'["registry.local:5000/acme/churn_model@sha256:{"c" * 64}", "other/x@sha256:{"d" * 64}"]'
    assert kubernetes.digest_ref(tag, pushed) == f"registry.local:5000/acme/churn_model@sha256:{'c' * 64}"
    for bad in ("", "[]", "not json", '["other/x@sha256:00"]'):
        with pytest.raises(KubernetesError, match="refusing to deploy a movable tag"):
            kubernetes.digest_ref(tag, bad)


# --- apply waits for the rollout (issue 20 item 10) ---------------------------------------------------------------

OLD, NEW = "churn_model:old1", "churn_model:new2"
FAST = K8S.replace("context: prod-cluster}", "context: prod-cluster, rollout_timeout_s: 1}")

# kubectl apply, as far as these tests need it: each object is created (POST) or replaced (PUT) through the API
# server the kubeconfig names, so the stand-in sees what a real apply does to the objects.
KUBECTL = """#!@PYTHON@
import json, sys, urllib.error, urllib.request
import yaml

args = sys.argv[1:]
config = yaml.safe_load(open(args[args.index("--kubeconfig") + 1]))
server, token = config["clusters"][0]["cluster"]["server"], config["users"][0]["user"]["token"]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}
    try:
        with opener.open(urllib.request.Request(server + path, data, headers, method=method), timeout=5) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


for doc in yaml.safe_load_all(open(args[args.index("-f") + 1])):
    collection = @COLLECTIONS@[doc["kind"]]
    path = collection + "/" + doc["metadata"]["name"]
    status, current = call("GET", path)
    if status == 404:
        status, answer = call("POST", collection, doc)
    else:
        doc["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        status, answer = call("PUT", path, doc)
    if status >= 300:
        sys.exit("Error from server (" + str(status) + "): " + str(answer.get("message")))
    print(doc["kind"].lower() + "/" + doc["metadata"]["name"] + " configured")
"""


@pytest.fixture
def kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "bin"
    folder.mkdir()
    script = folder / "kubectl"
    script.write_text(KUBECTL.replace("@PYTHON@", sys.executable).replace("@COLLECTIONS@", repr(COLLECTIONS)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return script


def pod(name: str, version: str, *, ready: bool, waiting: str | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running" if ready else "Pending"}
    status["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    if waiting:
        status["containerStatuses"] = [
            {"name": "bento", "ready": False, "state": {"waiting": {"reason": waiting, "message": f"{waiting} for x"}}}
        ]
    labels = {"app.kubernetes.io/instance": NAME, "app.kubernetes.io/version": version}
    return {"metadata": {"name": name, "labels": labels}, "status": status}


@dataclass
class Controller:
    """The Deployment controller and the kubelets, one step per read of the Deployment: a new template's pods
    become available after ``ready_after`` reads, never when their image cannot be pulled (``broken``); old
    pods keep running meanwhile (maxUnavailable 0). ``deadline_after``: reads after which the cluster gives up
    (ProgressDeadlineExceeded)."""

    serving: str | None = None  # the image whose pods are available
    broken: set[str] = field(default_factory=set)
    ready_after: int = 2
    deadline_after: int | None = None
    rolling: str | None = None
    reads: int = 0
    old_version: str = ""

    def __call__(self, api: ApiServer, deployment: dict[str, Any]) -> None:
        spec, generation = deployment["spec"], deployment["metadata"]["generation"]
        image = spec["template"]["spec"]["containers"][0]["image"]
        version = spec["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
        desired = spec["replicas"]
        if image != self.serving:
            self.rolling, self.reads = (image, 0) if image != self.rolling else (image, self.reads)
            self.reads += 1
            if image not in self.broken and self.reads >= self.ready_after:
                self.serving = image
        if image == self.serving:
            self.old_version = version
            deployment["status"] = {
                "observedGeneration": generation,
                "replicas": desired,
                "updatedReplicas": desired,
                "readyReplicas": desired,
                "availableReplicas": desired,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
            }
            api.pod_items = [pod(f"{NAME}-{version}-{i}", version, ready=True) for i in range(desired)]
            return
        old = desired if self.serving else 0
        progressing = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}
        if self.deadline_after is not None and self.reads >= self.deadline_after:
            progressing = {
                "type": "Progressing",
                "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": f'ReplicaSet "{NAME}-{version}" has timed out progressing.',
            }
        deployment["status"] = {
            "observedGeneration": generation,
            "replicas": old + 1,
            "updatedReplicas": 1,
            "readyReplicas": old,
            "availableReplicas": old,  # the old pods: available, but not the new version
            "unavailableReplicas": 1,
            "conditions": [progressing],
        }
        api.pod_items = [pod(f"{NAME}-{self.old_version}-{i}", self.old_version, ready=True) for i in range(old)]
        waiting = "ImagePullBackOff" if image in self.broken else "ContainerCreating"
        api.pod_items.append(pod(f"{NAME}-{version}-0", version, ready=False, waiting=waiting))


def live(config_text: str, bento: str) -> tuple[dict[str, dict[str, Any]], Controller]:
    """The objects of ``bento`` as deployed and serving, and a controller that knows its pods serve."""
    manifests = kubernetes.render(parse_config(config_text), bento, "staging")
    controller = Controller(serving=manifests[0]["spec"]["template"]["spec"]["containers"][0]["image"])
    controller.old_version = bento.partition(":")[2]
    return deployed_objects(manifests), controller


def image_of(api: ApiServer) -> str:
    return str(api.objects[PATHS["Deployment"]]["spec"]["template"]["spec"]["containers"][0]["image"])


def deployment_reads(server: Server) -> int:
    return sum(1 for c in server.calls if c.method == "GET" and c.path == PATHS["Deployment"])


def test_the_rollout_timeout_comes_from_config() -> None:
    assert kubernetes.render(parse_config(K8S), BENTO, "staging")[0]["spec"]["progressDeadlineSeconds"] == 600
    assert kubernetes.render(parse_config(FAST), BENTO, "staging")[0]["spec"]["progressDeadlineSeconds"] == 1
    with pytest.raises(ValueError, match="rollout_timeout_s"):
        parse_config(K8S.replace("context: prod-cluster}", "context: prod-cluster, rollout_timeout_s: 0}"))


def test_a_rollout_that_never_becomes_available_fails_and_puts_the_previous_version_back(
    tmp_path: Path, kubectl: Path
) -> None:
    objects, controller = live(FAST, OLD)
    before = copy.deepcopy(objects)
    controller.broken.add("ghcr.io/acme/models/churn_model:new2")
    api = ApiServer(objects, controller=controller)
    path = kubernetes.write(kubernetes.render(parse_config(FAST), NEW, "staging"), tmp_path / "k8s.yaml")
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        started = time.monotonic()
        with pytest.raises(KubernetesError) as raised:
            kubernetes.apply(path, "prod-cluster", kubeconfig=config, poll_s=0.05)
        elapsed = time.monotonic() - started
    message = str(raised.value)
    assert "\n" not in message
    assert re.fullmatch(
        rf"Deployment ml/{NAME} did not roll out: "
        rf"pod {NAME}-new2-0 Pending: ImagePullBackOff \(ImagePullBackOff for x\); "
        r"0 of 2 new replicas available after \d+ s; rolled back to the previous version \(old1\)",
        message,
    ), message
    assert 1 <= elapsed < 10  # the test-set timeout (deploy.kubernetes.rollout_timeout_s: 1), not the default 600
    assert deployment_reads(server) >= 3  # polled until the deadline
    # The new version was applied (kubectl PUT it), then every object got its previous spec and labels back.
    assert any(c.method == "PUT" and c.body["spec"] == before[PATHS["Deployment"]]["spec"] for c in server.calls)
    assert image_of(api) == "ghcr.io/acme/models/churn_model:old1"
    for where, previous in before.items():
        assert api.objects[where]["spec"] == previous["spec"]
        assert api.objects[where]["metadata"]["labels"] == previous["metadata"]["labels"]


def test_a_rollout_that_becomes_available_after_a_few_polls_succeeds(tmp_path: Path, kubectl: Path) -> None:
    objects, controller = live(FAST, OLD)
    controller.ready_after = 4
    api = ApiServer(objects, controller=controller)
    path = kubernetes.write(kubernetes.render(parse_config(K8S), NEW, "staging"), tmp_path / "k8s.yaml")
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        output = kubernetes.apply(path, "prod-cluster", kubeconfig=config, poll_s=0.02)
    assert f"deployment/{NAME} configured" in output
    # apply returned only once the new pods served: after the reads the controller needed, not before.
    assert controller.serving == image_of(api) == "ghcr.io/acme/models/churn_model:new2"
    assert deployment_reads(server) >= 4
    final = api.objects[PATHS["Deployment"]]
    assert kubernetes.rollout_status(final).done and final["status"]["observedGeneration"] == 2
    assert not [c for c in server.calls if c.method == "DELETE"]


def test_a_first_deploy_that_never_rolls_out_is_removed(tmp_path: Path, kubectl: Path) -> None:
    api = ApiServer({}, controller=Controller(broken={"ghcr.io/acme/models/churn_model:new2"}))
    path = kubernetes.write(kubernetes.render(parse_config(FAST), NEW, "staging"), tmp_path / "k8s.yaml")
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        with pytest.raises(
            KubernetesError,
            match=rf"^Deployment ml/{NAME} did not roll out: pod .*ImagePullBackOff.*0 of 2 new replicas available "
            r"after \d+ s; removed what was applied \(nothing was deployed before\)$",
        ):
            kubernetes.apply(path, "prod-cluster", kubeconfig=config, poll_s=0.05)
    assert sorted(c.path for c in server.calls if c.method == "POST") == sorted(COLLECTIONS.values())
    assert api.objects == {}


def test_a_rollout_the_cluster_gives_up_on_fails_at_once(tmp_path: Path, kubectl: Path) -> None:
    objects, controller = live(K8S, OLD)
    controller.broken.add("ghcr.io/acme/models/churn_model:new2")
    controller.deadline_after = 2
    api = ApiServer(objects, controller=controller)
    path = kubernetes.write(kubernetes.render(parse_config(K8S), NEW, "staging"), tmp_path / "k8s.yaml")
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        started = time.monotonic()
        with pytest.raises(
            KubernetesError, match=r"ImagePullBackOff .*; ProgressDeadlineExceeded \(ReplicaSet .* has "
        ):
            kubernetes.apply(path, "prod-cluster", kubeconfig=config, poll_s=0.02)
    assert time.monotonic() - started < 10  # not the 600 s of the config: the cluster's verdict is final
    assert image_of(api) == "ghcr.io/acme/models/churn_model:old1"


def test_a_failed_apply_puts_back_what_it_changed(tmp_path: Path, kubectl: Path) -> None:
    objects, controller = live(FAST, OLD)
    api = ApiServer(objects, controller=controller)
    api.read_only.add(PATHS["PodDisruptionBudget"])  # kubectl applies the Deployment, then is refused the PDB
    path = kubernetes.write(kubernetes.render(parse_config(FAST), NEW, "staging"), tmp_path / "k8s.yaml")
    with api_server(api) as server:
        config = kubeconfig(tmp_path, server.url, {"token": TOKEN})
        with pytest.raises(
            KubernetesError,
            match=r"^kubectl apply exited 1: .*Error from server \(403\).*; "
            r"rolled back to the previous version \(old1\)$",
        ):
            kubernetes.apply(path, "prod-cluster", kubeconfig=config, poll_s=0.05)
    assert image_of(api) == "ghcr.io/acme/models/churn_model:old1"


def deployment_with(
    generation: int = 2, observed: int = 2, desired: int = 2, total: int = 2, updated: int = 2, available: int = 2
) -> dict[str, Any]:
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": desired},
        "status": {
            "observedGeneration": observed,
            "replicas": total,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


@pytest.mark.parametrize(
    ("deployment", "done", "failed", "waiting"),
    [
        pytest.param(deployment_with(), True, None, "", id="complete"),
        pytest.param(deployment_with(observed=1), False, None, "not observed generation 2", id="not-observed"),
        pytest.param({"metadata": {"generation": 1}, "spec": {}}, False, None, "not observed", id="no-status"),
        # The issue: the new pod Pending, the old ones Running and available.
        pytest.param(deployment_with(total=3, updated=1), False, None, "1 of 2 replicas updated", id="new-pod-pending"),
        pytest.param(deployment_with(total=3), False, None, "1 old replicas pending termination", id="old-left"),
        pytest.param(
            deployment_with(available=1), False, None, "1 of 2 updated replicas available", id="not-available"
        ),
        pytest.param(
            deployment_with(desired=0, total=0, updated=0, available=0),
            False,
            "spec.replicas is 0",
            "",
            id="serves-nothing",
        ),
    ],
)
def test_rollout_status_is_judged_as_kubectl_does(
    deployment: dict[str, Any], done: bool, failed: str | None, waiting: str
) -> None:
    state = kubernetes.rollout_status(deployment)
    assert state.done is done
    assert (state.failed or "").startswith(failed or "") and bool(state.failed) is bool(failed)
    assert waiting in state.waiting
