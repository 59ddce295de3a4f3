"""The `kubernetes` target: manifests for a containerized bento, applied when a context is set.

Yatai does not support BentoML >= 1.2, so the bento is containerized (`bentoml containerize`, which needs
Docker) and run by plain Deployment / Service / HorizontalPodAutoscaler / PodDisruptionBudget objects
that probe BentoML's /readyz and /livez.

The pods pass the Pod Security Standards "restricted" profile (issue 13 item 10): they run as the
non-root ``bentoml`` user that `bentoml containerize` images create (uid/gid 1034), without privilege
escalation or capabilities, with the RuntimeDefault seccomp profile and a read-only root filesystem.
What BentoML 1.4 writes while serving goes to two emptyDir volumes: ``/tmp`` (its UNIX sockets) and
its home (stores, ``prometheus_multiproc_dir``); the bento itself (``/home/bentoml/bento``, models
included) is only read. No service-account token is mounted: the service never calls the API.

Undeploy and the post-deploy watch talk to the API server directly (httpx), with the server, CA and
credentials of the kubeconfig context: kubectl is not needed for either. Apply uses kubectl, then follows
the Deployment's rollout through the API server and only returns once every replica runs the new version
(issue 20 item 10); a rollout that does not complete puts back what was there before.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

import yaml

from modelctl import cmd, platformenv, watch
from modelctl.errors import ModelctlError
from modelkit import ConfigError, ModelConfig, read_yaml

if TYPE_CHECKING:
    import httpx

CONTAINER_PORT = 3000
# The user `bentoml containerize` images run as (BENTO_USER_UID/GID in BentoML 1.4's Dockerfile template).
BENTO_UID = 1034
# Inside the image BENTOML_HOME is /home/bentoml, which also holds the bento: the runtime home moves
# to a writable volume, the bento stays read-only.
RUNTIME_HOME = "/home/bentoml/runtime"
MANAGED_BY = "modelctl"
ROLLOUT_TIMEOUT_S = 600.0  # Kubernetes' own default progressDeadlineSeconds
ROLLOUT_POLL_S = 2.0


class KubernetesError(ModelctlError):
    pass


def resource_name(model: str, env: str) -> str:
    """The name of every object of ``model`` in ``env`` (a DNS label: underscores become dashes)."""
    return f"{model.replace('_', '-')}-{env}"


def image(config: ModelConfig, bento: str) -> str:
    repository = config.deploy.kubernetes.image_repository
    if repository is None:
        raise KubernetesError(f"deploy.kubernetes.image_repository is not set in models/{config.name}/config.yaml")
    name, _, version = bento.partition(":")
    return f"{repository.rstrip('/')}/{name}:{version}"


def render(config: ModelConfig, bento: str, env: str, image_ref: str | None = None) -> list[dict[str, Any]]:
    """Deployment, Service, HPA and PDB for ``bento`` in ``env`` (``image_ref``: the pushed image by digest,
    ``repository/name@sha256:...``; default the tag :func:`image` names).

    Every document gets its own dicts (nothing shared), so the YAML has no anchors or aliases.
    """
    name = resource_name(config.name, env)
    namespace = config.deploy.kubernetes.namespace
    version = bento.partition(":")[2]

    def labels() -> dict[str, str]:
        return {
            "app.kubernetes.io/name": config.name.replace("_", "-"),
            "app.kubernetes.io/instance": name,
            "app.kubernetes.io/version": version,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            "modelctl/env": env,
        }

    def meta() -> dict[str, Any]:
        return {"name": name, "namespace": namespace, "labels": labels()}

    def selector() -> dict[str, str]:
        return {"app.kubernetes.io/instance": name}

    scaling = config.deploy.scaling
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta(),
            "spec": {
                "replicas": max(scaling.min_replicas, 1),
                # The cluster marks a rollout that stalls this long ProgressDeadlineExceeded; apply() waits as long.
                "progressDeadlineSeconds": config.deploy.kubernetes.rollout_timeout_s,
                "selector": {"matchLabels": selector()},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {"metadata": {"labels": labels()}, "spec": _pod_spec(config, bento, env, image_ref)},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta(),
            "spec": {"selector": selector(), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta(),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": max(scaling.min_replicas, 1),
                "maxReplicas": scaling.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": scaling.target_cpu_percent},
                        },
                    }
                ],
            },
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": meta(),
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector()}},
        },
    ]


def _pod_spec(config: ModelConfig, bento: str, env: str, image_ref: str | None = None) -> dict[str, Any]:
    res = config.deploy.resources
    resources: dict[str, Any] = {
        "requests": {"cpu": res.cpu, "memory": res.memory},
        "limits": {"cpu": res.cpu, "memory": res.memory},
    }
    if res.gpu:
        resources["limits"]["nvidia.com/gpu"] = res.gpu
    return {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": BENTO_UID,
            "runAsGroup": BENTO_UID,
            "fsGroup": BENTO_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "bento",
                "image": image_ref or image(config, bento),
                "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
                "env": [
                    {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
                    {"name": "MODEL_ENV", "value": env},
                    {"name": "BENTOML_HOME", "value": RUNTIME_HOME},
                    {"name": "XDG_CACHE_HOME", "value": "/tmp/.cache"},
                    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
                ],
                "resources": resources,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "runAsNonRoot": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "volumeMounts": [
                    {"name": "tmp", "mountPath": "/tmp"},
                    {"name": "bentoml-home", "mountPath": RUNTIME_HOME},
                ],
                "readinessProbe": {
                    "httpGet": {"path": "/readyz", "port": "http"},
                    "periodSeconds": 10,
                    "timeoutSeconds": 3,
                    "initialDelaySeconds": 5,
                },
                "livenessProbe": {
                    "httpGet": {"path": "/livez", "port": "http"},
                    "periodSeconds": 10,
                    "timeoutSeconds": 3,
                    "initialDelaySeconds": 30,
                    "failureThreshold": 3,
                },
            }
        ],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "bentoml-home", "emptyDir": {"sizeLimit": "1Gi"}},
        ],
    }


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors/aliases (``&id001``), which some cluster tooling mishandles."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(manifests: list[dict[str, Any]]) -> str:
    return yaml.dump_all(manifests, Dumper=_PlainDumper, sort_keys=False)


def write(manifests: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump(manifests))
    return path


def live_url(context: str, namespace: str, model: str, env: str) -> str:
    """The URL a deploy records: ``kubernetes://<context, quoted>/<namespace>/<name>``."""
    return f"kubernetes://{quote(context, safe='')}/{namespace}/{resource_name(model, env)}"


def parse_live_url(url: str) -> tuple[str, str, str]:
    """(context, namespace, name) of a :func:`live_url`."""
    rest = url.removeprefix("kubernetes://")
    parts = rest.split("/")
    if rest == url or len(parts) != 3 or not all(parts):
        raise KubernetesError(f"{url!r} is not a kubernetes://CONTEXT/NAMESPACE/NAME deployment URL")
    return unquote(parts[0]), parts[1], parts[2]


def apply(
    path: Path,
    context: str,
    *,
    kubeconfig: Path | str | None = None,
    timeout_s: float | None = None,
    poll_s: float = ROLLOUT_POLL_S,
) -> str:
    """`kubectl apply` the manifests at ``path``, then wait for the Deployment's rollout; kubectl's output.

    Returns only once the rollout is complete (:func:`rollout_status`): a new version whose pods are Pending
    beside the old Running ones is never reported deployed (issue 20 item 10). A rollout the cluster declares
    failed (ProgressDeadlineExceeded), or that is not complete after ``timeout_s`` (default: the Deployment's
    progressDeadlineSeconds, which :func:`render` takes from deploy.kubernetes.rollout_timeout_s), and a
    failed apply, put every object back as it was before (deleting what did not exist) and raise
    KubernetesError, one line naming the Deployment, why, and what was put back.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KubernetesError(f"kubectl is not installed; the manifests are in {path}")
    deployment = _deployment_in(path)
    namespace, name = str(deployment["metadata"]["namespace"]), str(deployment["metadata"]["name"])
    what = f"Deployment {namespace}/{name}"
    if timeout_s is None:
        timeout_s = float((deployment.get("spec") or {}).get("progressDeadlineSeconds") or ROLLOUT_TIMEOUT_S)
    cluster = access(context, kubeconfig)
    with Api(cluster) as api:
        before = _snapshot(api, namespace, name)
        argv: list[str | Path] = [kubectl, "--context", context]
        if kubeconfig is not None:
            argv += ["--kubeconfig", str(kubeconfig)]
        try:
            output = cmd.run([*argv, "apply", "-f", path], what="kubectl apply").stdout
        except cmd.CommandError as exc:
            failed = f"kubectl apply exited {exc.returncode}: {_one_line(cmd.tail_of(exc.output), 500)}"
            raise KubernetesError(f"{failed}; {_put_back(api, before, name)}") from exc
        problem = _await_rollout(api, namespace, name, timeout_s, poll_s)
        if problem is None:
            return output
        raise KubernetesError(f"{what} did not roll out: {problem}; {_put_back(api, before, name)}")


def containerize(python: Path, bento: str, tag: str, env: dict[str, str]) -> None:
    """`bentoml containerize`; without a Docker daemon (as on the dev machines) it fails with a clear message."""
    argv = platformenv.command(python, "containerize", bento, "-t", tag)
    result = cmd.run(argv, what="bentoml containerize", env=env, input=platformenv.secrets_input(), check=False)
    if result.returncode != 0:
        output = result.output
        if "not healthy" in output or "Cannot connect to the Docker daemon" in output or "docker" in output.lower():
            raise KubernetesError(
                "bentoml containerize needs a running Docker daemon, and there is none here; "
                "it runs in the GitHub deploy workflow (ubuntu runners have Docker)"
            )
        raise KubernetesError(f"bentoml containerize exited {result.returncode}: {output[-500:]}")


def push(tag: str) -> str:
    """Push ``tag``; the image by digest (``repository@sha256:...``), what manifests refer to (a tag can move)."""
    docker = shutil.which("docker")
    if docker is None:
        raise KubernetesError(f"docker is not installed: cannot push {tag}")
    result = cmd.run([docker, "push", tag], what="docker push", check=False)
    if result.returncode != 0:
        raise KubernetesError(f"docker push {tag} exited {result.returncode}: {result.output[-500:]}")
    digests = cmd.run([docker, "inspect", "--format", "{{json .RepoDigests}}", tag], what="docker inspect", check=False)
    return digest_ref(tag, digests.stdout)


def digest_ref(tag: str, repo_digests_json: str) -> str:
    """``repository@sha256:...`` of ``tag`` from `docker inspect`'s RepoDigests (JSON)."""
    import json

    repository = tag.rsplit(":", 1)[0] if ":" in tag.rsplit("/", 1)[-1] else tag
    try:
        found = json.loads(repo_digests_json or "[]")
    except ValueError:
        found = []
    for item in found if isinstance(found, list) else []:
        if isinstance(item, str) and item.startswith(f"{repository}@sha256:"):
            return item
    raise KubernetesError(f"docker reports no pushed digest for {tag}: refusing to deploy a movable tag")


# --- the API server, as the kubeconfig context describes it ----------------------------------------


@dataclass(frozen=True)
class Access:
    """How to reach one cluster: the server URL, TLS settings and auth headers of a kubeconfig context."""

    context: str
    server: str
    verify: ssl.SSLContext | bool
    headers: Mapping[str, str]


def kubeconfig_paths(kubeconfig: Path | str | None = None) -> list[Path]:
    if kubeconfig is not None:
        return [Path(kubeconfig)]
    configured = os.environ.get("KUBECONFIG")
    if configured:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _read_kubeconfig(path: Path) -> dict[str, Any] | None:
    """The kubeconfig at ``path`` (None when there is none).

    Read as config.yaml is read, anchors and aliases refused before anything expands them: 484 bytes of
    `<<: *a` merge keys took 46 s and 820 MB with yaml.safe_load on PyYAML 6.0.3 (issue 20 item 12).
    kubectl and the cloud CLIs never write anchors.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise KubernetesError(f"cannot read kubeconfig {path}: {exc}") from exc
    try:
        loaded = read_yaml(text, str(path))
    except ConfigError as exc:
        raise KubernetesError(f"cannot use kubeconfig {exc.problems[0]}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise KubernetesError(f"kubeconfig {path}: expected a mapping, got {type(loaded).__name__}")
    return loaded


def _mapping(entry: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``entry[key]`` when it is a mapping ({} when absent); KubernetesError naming ``where`` otherwise."""
    value = entry.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise KubernetesError(f"{where}: {key}: expected a mapping, got {type(value).__name__}")
    return value


def _strings(entry: dict[str, Any], keys: tuple[str, ...], where: str) -> dict[str, Any]:
    """``entry``, once every key of ``keys`` it has holds a string (the values are never shown: credentials)."""
    for key in keys:
        value = entry.get(key)
        if value is not None and not isinstance(value, str):
            raise KubernetesError(f"{where}: {key}: expected a string, got {type(value).__name__}")
    return entry


_CLUSTER_STRINGS = ("server", "certificate-authority", "certificate-authority-data")
_USER_STRINGS = ("token", "tokenFile", "client-certificate", "client-key", "client-certificate-data", "client-key-data")


Entries = dict[str, dict[str, tuple[dict[str, Any], Path]]]


def _entries(paths: list[Path]) -> Entries:
    """Every named cluster, context and user in ``paths``, with its file (the first file wins, as in kubectl)."""
    entries: Entries = {"clusters": {}, "contexts": {}, "users": {}}
    for path in paths:
        loaded = _read_kubeconfig(path)
        if loaded is None:
            continue
        for section, found in entries.items():
            items = loaded.get(section) or []
            if not isinstance(items, list):
                raise KubernetesError(f"kubeconfig {path}: {section}: expected a list, got {type(items).__name__}")
            for item in items:
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    found.setdefault(item["name"], (item, path))
    return entries


def access(context: str, kubeconfig: Path | str | None = None) -> Access:
    """The server, CA and credentials of ``context`` (KUBECONFIG files merged as kubectl does: first wins)."""
    paths = kubeconfig_paths(kubeconfig)
    entries = _entries(paths)
    where = ", ".join(str(p) for p in paths)
    if context not in entries["contexts"]:
        raise KubernetesError(f"kubeconfig context {context!r} is not in {where}: cannot reach the cluster")
    context_entry, context_file = entries["contexts"][context]
    ctx = _mapping(context_entry, "context", f"kubeconfig {context_file}: context {context!r}")
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not isinstance(cluster_name, str) or cluster_name not in entries["clusters"]:
        raise KubernetesError(f"kubeconfig context {context!r} names cluster {cluster_name!r}, which is not in {where}")
    cluster_entry, cluster_file = entries["clusters"][cluster_name]
    where_cluster = f"kubeconfig {cluster_file}: cluster {cluster_name!r}"
    cluster = _strings(_mapping(cluster_entry, "cluster", where_cluster), _CLUSTER_STRINGS, where_cluster)
    server = cluster.get("server")
    if not isinstance(server, str) or not server.startswith(("https://", "http://")):
        raise KubernetesError(f"kubeconfig cluster {cluster_name!r} has no http(s) server URL")
    user: dict[str, Any] = {}
    user_file = cluster_file
    if user_name is not None:
        if not isinstance(user_name, str) or user_name not in entries["users"]:
            raise KubernetesError(f"kubeconfig context {context!r} names user {user_name!r}, which is not in {where}")
        user_entry, user_file = entries["users"][user_name]
        where_user = f"kubeconfig {user_file}: user {user_name!r}"
        user = _strings(_mapping(user_entry, "user", where_user), _USER_STRINGS, where_user)
    verify = _tls(cluster, cluster_file, user, user_file, server)
    return Access(context=context, server=server.rstrip("/"), verify=verify, headers=_auth(user, user_file, context))


def _file(value: str, relative_to: Path) -> Path:
    path = Path(os.path.expanduser(value))
    return path if path.is_absolute() else relative_to.parent / path


def _tls(
    cluster: dict[str, Any], cluster_file: Path, user: dict[str, Any], user_file: Path, server: str
) -> ssl.SSLContext | bool:
    if not server.startswith("https://"):
        return True
    if cluster.get("insecure-skip-tls-verify") is True:
        return False
    context = ssl.create_default_context()
    if cluster.get("certificate-authority-data"):
        context = ssl.create_default_context(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif cluster.get("certificate-authority"):
        context = ssl.create_default_context(cafile=str(_file(cluster["certificate-authority"], cluster_file)))
    with _client_certificate(user, user_file) as pair:
        if pair is not None:
            context.load_cert_chain(str(pair[0]), str(pair[1]))
    return context


@contextmanager
def _client_certificate(user: dict[str, Any], user_file: Path) -> Iterator[tuple[Path, Path] | None]:
    """Paths of the user's client certificate and key; inline data goes to a private folder for the load."""
    if user.get("client-certificate") and user.get("client-key"):
        yield _file(user["client-certificate"], user_file), _file(user["client-key"], user_file)
        return
    if not (user.get("client-certificate-data") and user.get("client-key-data")):
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="modelctl-kube-") as folder:
        cert, key = Path(folder) / "cert.pem", Path(folder) / "key.pem"
        for path, data in ((cert, user["client-certificate-data"]), (key, user["client-key-data"])):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(base64.b64decode(data))
        yield cert, key


def _auth(user: dict[str, Any], user_file: Path, context: str) -> dict[str, str]:
    if user.get("token"):
        return {"Authorization": f"Bearer {user['token']}"}
    if user.get("tokenFile"):
        token = _file(user["tokenFile"], user_file).read_text(encoding="utf-8").strip()
        return {"Authorization": f"Bearer {token}"}
    if isinstance(user.get("exec"), dict):
        return {"Authorization": f"Bearer {_exec_token(user['exec'], context, user_file)}"}
    if user.get("client-certificate-data") or user.get("client-certificate"):
        return {}
    if user.get("username") or user.get("auth-provider"):
        raise KubernetesError(
            f"kubeconfig context {context!r} uses basic auth or a legacy auth-provider; "
            "modelctl supports a token, tokenFile, exec credentials or a client certificate"
        )
    return {}


def _exec_token(spec: dict[str, Any], context: str, user_file: Path) -> str:
    """A token from an exec credential plugin (e.g. `aws eks get-token`, `gke-gcloud-auth-plugin`)."""
    command = spec.get("command")
    if not isinstance(command, str):
        raise KubernetesError(f"kubeconfig context {context!r} has an exec credential without a command")
    args, env = spec.get("args") or [], spec.get("env") or []
    for key, value in (("args", args), ("env", env)):
        if not isinstance(value, list):
            raise KubernetesError(
                f"kubeconfig {user_file}: context {context!r}: exec credential {key}: "
                f"expected a list, got {type(value).__name__}"
            )
    extra = {str(e["name"]): str(e["value"]) for e in env if isinstance(e, dict) and "name" in e}
    result = cmd.run(
        [command, *[str(a) for a in args]],
        what=f"the credential plugin of kubeconfig context {context!r}",
        env=cmd.clean_env(extra),
        timeout=60,
    )
    try:
        token = json.loads(result.stdout)["status"]["token"]
    except (ValueError, KeyError, TypeError) as exc:
        raise KubernetesError(f"the credential plugin of context {context!r} printed no ExecCredential token") from exc
    return str(token)


class Api:
    """A few calls to the API server of one kubeconfig context; every failure names the server and context."""

    def __init__(self, cluster: Access, timeout: float = 15.0) -> None:
        import httpx  # imported here: most commands never talk to a cluster

        self.cluster = cluster
        self.client = httpx.Client(
            base_url=cluster.server, verify=cluster.verify, headers=dict(cluster.headers), timeout=timeout
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        import httpx

        try:
            return self.client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise KubernetesError(
                f"cannot reach the Kubernetes API server {self.cluster.server} (context {self.cluster.context!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def refused(self, response: httpx.Response, what: str) -> str:
        try:
            message = str(response.json().get("message", ""))
        except ValueError:
            message = response.text[:200]
        if response.status_code == 401:
            return f"{what}: the API server refused the credentials of context {self.cluster.context!r} (401)"
        if response.status_code == 403:
            return f"{what}: context {self.cluster.context!r} is not allowed to (403 Forbidden: {message})"
        return f"{what}: HTTP {response.status_code} {message}".rstrip()


# The objects render() writes, deleted HPA first (so nothing scales the Deployment back up).
RESOURCES = (
    ("HorizontalPodAutoscaler", "/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers/{name}"),
    ("Deployment", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}"),
    ("Service", "/api/v1/namespaces/{namespace}/services/{name}"),
    ("PodDisruptionBudget", "/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"),
)
RESOURCES_BY_KIND = dict(RESOURCES)


@dataclass(frozen=True)
class Removed:
    kind: str
    name: str
    outcome: str  # "deleted" or "absent"


def undeploy(
    model: str, env: str, *, namespace: str, context: str, kubeconfig: Path | str | None = None, timeout: float = 15.0
) -> list[Removed]:
    """Delete ``model``'s Deployment, Service, HPA and PDB in ``env`` through the API server.

    Only objects modelctl rendered for this model and environment are deleted (their labels are checked,
    and the DELETE is conditional on the uid that was checked). Absent objects are fine. Raises
    KubernetesError when the cluster cannot be reached or any object could not be deleted.
    """
    name = resource_name(model, env)
    removed: list[Removed] = []
    failures: list[str] = []
    with Api(access(context, kubeconfig), timeout) as api:
        for kind, template in RESOURCES:
            path = template.format(namespace=namespace, name=name)
            what = f"{kind} {namespace}/{name}"
            found = api.request("GET", path)
            if found.status_code == 404:
                removed.append(Removed(kind, name, "absent"))
                continue
            if found.status_code != 200:
                failures.append(api.refused(found, f"reading {what}"))
                continue
            item = found.json()
            labels = (item.get("metadata") or {}).get("labels") or {}
            if labels.get("app.kubernetes.io/instance") != name or labels.get("modelctl/env") != env:
                failures.append(f"{what} exists but was not deployed by modelctl for {model} in {env}: left alone")
                continue
            uid = (item.get("metadata") or {}).get("uid")
            options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
            if uid:
                options["preconditions"] = {"uid": uid}
            deleted = api.request("DELETE", path, options)
            if deleted.status_code in (200, 202):
                removed.append(Removed(kind, name, "deleted"))
            elif deleted.status_code == 404:
                removed.append(Removed(kind, name, "absent"))
            else:
                failures.append(api.refused(deleted, f"deleting {what}"))
    if failures:
        raise KubernetesError(
            f"undeploy of {model} from {env} (context {context!r}) is incomplete: " + "; ".join(failures)
        )
    return removed


def undeploy_config(config: ModelConfig, env: str, kubeconfig: Path | str | None = None) -> list[Removed]:
    """:func:`undeploy` with the namespace and context of ``config`` (fails clearly without a context)."""
    context = config.deploy.kubernetes.context
    if context is None:
        raise KubernetesError(
            f"deploy.kubernetes.context is not set in models/{config.name}/config.yaml: "
            f"no cluster to undeploy {config.name} from"
        )
    return undeploy(
        config.name, env, namespace=config.deploy.kubernetes.namespace, context=context, kubeconfig=kubeconfig
    )


# --- the rollout (issue 20 item 10) ----------------------------------------------------------------


@dataclass(frozen=True)
class Rollout:
    """Where a Deployment's rollout stands: ``done``, ``failed`` (why it cannot complete), else ``waiting`` for what."""

    done: bool
    failed: str | None = None
    waiting: str = ""


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def rollout_status(deployment: Mapping[str, Any]) -> Rollout:
    """The rollout of ``deployment`` (as the API server returns it), judged as `kubectl rollout status` does.

    Complete: the controller has seen the latest generation, every desired replica runs the new template, no
    old replica is left, and every updated replica is available. Old pods still Running are available replicas
    too, so ``availableReplicas`` alone would call a rollout done while the new pods serve nothing.
    """
    meta: Mapping[str, Any] = deployment.get("metadata") or {}
    spec: Mapping[str, Any] = deployment.get("spec") or {}
    status: Mapping[str, Any] = deployment.get("status") or {}
    generation, observed = _count(meta.get("generation")), _count(status.get("observedGeneration"))
    if observed < generation or observed == 0:
        return Rollout(False, waiting=f"the controller has not observed generation {generation} yet")
    progressing = next(
        (c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Progressing"), {}
    )
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        return Rollout(False, failed=f"ProgressDeadlineExceeded ({_one_line(str(progressing.get('message', '')))})")
    desired = _count(spec.get("replicas", 1))
    if desired < 1:
        return Rollout(False, failed="spec.replicas is 0: no replica would serve the new version")
    updated, total = _count(status.get("updatedReplicas")), _count(status.get("replicas"))
    available = _count(status.get("availableReplicas"))
    if updated < desired:
        return Rollout(False, waiting=f"{updated} of {desired} replicas updated")
    if total > updated:
        return Rollout(False, waiting=f"{total - updated} old replicas pending termination")
    if available < updated:
        return Rollout(False, waiting=f"{available} of {updated} updated replicas available")
    return Rollout(True)


def _one_line(text: str, limit: int = 200) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _deployment_in(path: Path) -> dict[str, Any]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise KubernetesError(f"cannot read the manifests {path}: {exc}") from exc
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "Deployment":
            return document
    raise KubernetesError(f"{path} has no Deployment: nothing to roll out")


def _await_rollout(api: Api, namespace: str, name: str, timeout_s: float, poll_s: float) -> str | None:
    """None once the rollout of ``namespace/name`` is complete; else why it is not (failed, or out of time).

    A poll that fails (the API server unreachable for a moment) is retried until the deadline.
    """
    path = RESOURCES_BY_KIND["Deployment"].format(namespace=namespace, name=name)
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        try:
            found = api.request("GET", path)
            if found.status_code == 200:
                deployment = found.json()
                state = rollout_status(deployment)
                if state.done:
                    return None
            else:
                deployment, state = None, Rollout(False, waiting=api.refused(found, "reading the Deployment"))
        except KubernetesError as exc:
            deployment, state = None, Rollout(False, waiting=str(exc))
        now = time.monotonic()
        if state.failed is not None or now >= deadline:
            return _why(api, namespace, name, deployment, state, now - started)
        time.sleep(max(0.0, min(poll_s, deadline - now)))


def _why(api: Api, namespace: str, name: str, deployment: dict[str, Any] | None, state: Rollout, elapsed: float) -> str:
    """One line: what keeps the new pods from serving (from the pods, when they can be read) and how far it got."""
    after = f"after {elapsed:.0f} s"
    if deployment is None:
        return f"{state.waiting} {after}"
    desired = max(_count((deployment.get("spec") or {}).get("replicas", 1)), 1)
    template = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    version = (template.get("labels") or {}).get("app.kubernetes.io/version")
    pods = _new_pods(api, namespace, name, version)
    parts = [state.failed] if state.failed else []
    if pods is None:
        return "; ".join([*parts, f"{state.waiting or 'not complete'} {after}"])
    ready, problem = pods
    if problem:
        parts.insert(0, problem)
    return "; ".join([*parts, f"{ready} of {desired} new replicas available {after}"])


def _new_pods(api: Api, namespace: str, name: str, version: str | None) -> tuple[int, str | None] | None:
    """(ready pods of ``version``, what keeps the first other one from being ready), or None when unreadable."""
    try:
        listed = api.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/instance%3D{name}"
        )
        items = listed.json().get("items") if listed.status_code == 200 else None
    except (KubernetesError, ValueError, AttributeError):
        return None
    if not isinstance(items, list):
        return None
    ready, problem = 0, None
    for pod in items:
        if not isinstance(pod, dict):
            continue
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        if version is not None and (meta.get("labels") or {}).get("app.kubernetes.io/version") != version:
            continue  # an old pod: it serves, but not the new version
        conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            ready += 1
        elif problem is None:
            problem = f"pod {meta.get('name', '?')} {status.get('phase') or 'Pending'}{_pod_reason(status, conditions)}"
    return ready, problem


def _pod_reason(status: dict[str, Any], conditions: list[dict[str, Any]]) -> str:
    for container in status.get("containerStatuses") or []:
        state = (container.get("state") or {}) if isinstance(container, dict) else {}
        for key in ("waiting", "terminated"):
            detail = state.get(key)
            if isinstance(detail, dict) and detail.get("reason"):
                message = _one_line(str(detail.get("message") or ""), 160)
                return f": {detail['reason']}" + (f" ({message})" if message else "")
    for condition in conditions:
        if condition.get("status") == "False" and condition.get("reason"):
            message = _one_line(str(condition.get("message") or ""), 160)
            return f": {condition['reason']}" + (f" ({message})" if message else "")
    return ""


Snapshot = list[tuple[str, str, dict[str, Any] | None]]


def _snapshot(api: Api, namespace: str, name: str) -> Snapshot:
    """Every object :func:`render` writes as it is now ((kind, path, object or None when absent))."""
    taken: Snapshot = []
    for kind, template in RESOURCES:
        path = template.format(namespace=namespace, name=name)
        found = api.request("GET", path)
        if found.status_code == 404:
            taken.append((kind, path, None))
        elif found.status_code == 200:
            taken.append((kind, path, found.json()))
        else:
            raise KubernetesError(api.refused(found, f"reading {kind} {namespace}/{name} before applying"))
    return taken


def _put_back(api: Api, before: Snapshot, name: str) -> str:
    """Put every object back as :func:`_snapshot` found it; what was done, as the end of a one-line error."""
    failures = []
    for kind, path, previous in before:
        try:
            failure = (
                _delete_applied(api, kind, path, name) if previous is None else _restore(api, kind, path, previous)
            )
        except KubernetesError as exc:
            failure = str(exc)
        if failure:
            failures.append(failure)
    deployment = next((previous for kind, _, previous in before if kind == "Deployment"), None)
    if failures:
        return "putting back what was there before failed too: " + "; ".join(failures)
    if deployment is None:
        return "removed what was applied (nothing was deployed before)"
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    version = labels.get("app.kubernetes.io/version")
    return f"rolled back to the previous version{f' ({version})' if version else ''}"


_SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")


def _restore(api: Api, kind: str, path: str, previous: dict[str, Any]) -> str | None:
    """Put ``previous``'s labels, annotations and spec back on the object at ``path`` (None when done)."""
    old_meta = previous.get("metadata") or {}
    for _ in range(3):  # a concurrent update (the HPA, the controller) makes a PUT conflict: read again
        found = api.request("GET", path)
        if found.status_code == 404:
            body = {k: v for k, v in previous.items() if k != "status"}
            body["metadata"] = {k: v for k, v in old_meta.items() if k not in _SERVER_SET}
            created = api.request("POST", path.rsplit("/", 1)[0], body)
            return None if created.status_code in (200, 201) else api.refused(created, f"recreating {kind}")
        if found.status_code != 200:
            return api.refused(found, f"reading {kind}")
        current = found.json()
        meta = dict(current.get("metadata") or {})
        if current.get("spec") == previous.get("spec") and all(
            meta.get(key) == old_meta.get(key) for key in ("labels", "annotations")
        ):
            return None  # untouched (the apply stopped before it)
        for key in ("labels", "annotations"):
            meta.pop(key, None)
            if old_meta.get(key) is not None:
                meta[key] = old_meta[key]
        body = {**{k: v for k, v in current.items() if k != "status"}, "metadata": meta, "spec": previous.get("spec")}
        put = api.request("PUT", path, body)
        if put.status_code in (200, 201):
            return None
        if put.status_code != 409:
            return api.refused(put, f"putting back {kind}")
    return f"putting back {kind}: it kept changing (409 Conflict)"


def _delete_applied(api: Api, kind: str, path: str, name: str) -> str | None:
    """Delete the object this apply created at ``path`` (None when done or already gone)."""
    found = api.request("GET", path)
    if found.status_code == 404:
        return None
    if found.status_code != 200:
        return api.refused(found, f"reading {kind}")
    meta = found.json().get("metadata") or {}
    if (meta.get("labels") or {}).get("app.kubernetes.io/instance") != name:
        return f"{kind} {name} was not created by modelctl: left alone"
    options: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"}
    if meta.get("uid"):
        options["preconditions"] = {"uid": meta["uid"]}
    deleted = api.request("DELETE", path, options)
    return None if deleted.status_code in (200, 202, 404) else api.refused(deleted, f"deleting {kind}")


def metrics_scraper(
    model: str,
    env: str,
    *,
    namespace: str,
    context: str,
    kubeconfig: Path | str | None = None,
    timeout: float = 10.0,
) -> watch.Scraper:
    """A scraper for :func:`modelctl.watch.watch`: every running pod's /metrics through the API server proxy.

    Each pod is scraped on its own (a Service would mix the counters of different pods) and its series
    carry the pod name. Any failure raises WatchError naming the server, context and pod.
    """
    name = resource_name(model, env)
    cluster = access(context, kubeconfig)

    def scrape() -> watch.Series:
        try:
            with Api(cluster, timeout) as api:
                listed = api.request(
                    "GET", f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/instance%3D{name}"
                )
                if listed.status_code != 200:
                    raise KubernetesError(api.refused(listed, f"listing the pods of {namespace}/{name}"))
                pods = [
                    pod["metadata"]["name"]
                    for pod in listed.json().get("items") or []
                    if (pod.get("status") or {}).get("phase") == "Running"
                ]
                if not pods:
                    raise KubernetesError(f"no running pod of {namespace}/{name}")
                parts = []
                for pod in pods:
                    path = f"/api/v1/namespaces/{namespace}/pods/{pod}:{CONTAINER_PORT}/proxy/metrics"
                    response = api.request("GET", path)
                    if response.status_code != 200:
                        raise KubernetesError(api.refused(response, f"scraping pod {namespace}/{pod}"))
                    parts.append(watch.parse_metrics(response.text, source=pod))
                return watch.merge(parts)
        except KubernetesError as exc:
            raise watch.WatchError(str(exc)) from exc

    return scrape
