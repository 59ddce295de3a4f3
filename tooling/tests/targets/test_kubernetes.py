"""The kubernetes target: restricted-profile manifests, plain YAML, undeploy and metrics through the API server.

The API server is a real HTTP(S) server on 127.0.0.1 that records every call; the kubeconfig is a real
file that names it.
"""

from __future__ import annotations

import base64
import copy
import datetime
import re
import socket
import ssl
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    expected = "kubectl apply exited" if shutil.which("kubectl") else "kubectl is not installed; the manifests are in"
    with pytest.raises(KubernetesError, match=expected):
        kubernetes.apply(path, "no-such-context")


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
    """Objects by path; GET/DELETE like the API server (Status bodies, 404 when absent), bearer auth."""

    def __init__(self, objects: dict[str, dict[str, Any]], pods: dict[str, FakeBento] | None = None) -> None:
        self.objects = objects
        self.pods = pods or {}
        self.forbidden: set[str] = set()

    def __call__(self, call: Call) -> Reply:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"kind": "Status", "message": "Unauthorized", "code": 401})
        path = call.path.split("?")[0]
        if path == "/api/v1/namespaces/ml/pods":
            items = [{"metadata": {"name": n}, "status": {"phase": "Running"}} for n in self.pods]
            return Reply(200, {"kind": "PodList", "items": items})
        if path.startswith("/api/v1/namespaces/ml/pods/") and path.endswith("/proxy/metrics"):
            pod = path.split("/")[6].split(":")[0]
            return Reply(200, self.pods[pod].metrics()) if pod in self.pods else Reply(404, {"message": "no pod"})
        if path in self.forbidden:
            return Reply(403, {"kind": "Status", "message": f"cannot {call.method.lower()} {path}", "code": 403})
        if path not in self.objects:
            return Reply(404, {"kind": "Status", "message": "not found", "code": 404})
        if call.method == "GET":
            return Reply(200, self.objects[path])
        if call.method == "DELETE":
            expected = ((call.body or {}).get("preconditions") or {}).get("uid")
            if expected and expected != self.objects[path]["metadata"]["uid"]:
                return Reply(409, {"kind": "Status", "message": "Precondition failed: UID mismatch", "code": 409})
            self.objects.pop(path)
            return Reply(200, {"kind": "Status", "status": "Success"})
        return Reply(405, {"message": "method not allowed"})


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
