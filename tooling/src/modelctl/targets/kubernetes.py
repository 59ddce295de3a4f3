"""The `kubernetes` target: manifests for a containerized bento, applied with kubectl when a context is set.

Yatai does not support BentoML >= 1.2, so the bento is containerized (`bentoml containerize`, which needs
Docker) and run by plain Deployment / Service / HorizontalPodAutoscaler / PodDisruptionBudget objects
that probe BentoML's /readyz and /livez.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from modelctl.errors import ModelctlError
from modelkit import ModelConfig

CONTAINER_PORT = 3000


class KubernetesError(ModelctlError):
    pass


def image(config: ModelConfig, bento: str) -> str:
    repository = config.deploy.kubernetes.image_repository
    if repository is None:
        raise KubernetesError(f"deploy.kubernetes.image_repository is not set in models/{config.name}/config.yaml")
    name, _, version = bento.partition(":")
    return f"{repository.rstrip('/')}/{name}:{version}"


def render(config: ModelConfig, bento: str, env: str) -> list[dict[str, Any]]:
    """Deployment, Service, HPA and PDB for ``bento`` in ``env``."""
    name = f"{config.name.replace('_', '-')}-{env}"
    namespace = config.deploy.kubernetes.namespace
    labels = {
        "app.kubernetes.io/name": config.name.replace("_", "-"),
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/version": bento.partition(":")[2],
        "modelctl/env": env,
    }
    selector = {"app.kubernetes.io/instance": name}
    res = config.deploy.resources
    resources: dict[str, Any] = {
        "requests": {"cpu": res.cpu, "memory": res.memory},
        "limits": {"cpu": res.cpu, "memory": res.memory},
    }
    if res.gpu:
        resources["limits"]["nvidia.com/gpu"] = res.gpu
    probe = {"httpGet": {"port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    scaling = config.deploy.scaling
    meta = {"name": name, "namespace": namespace, "labels": labels}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": max(scaling.min_replicas, 1),
                "selector": {"matchLabels": selector},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "bento",
                                "image": image(config, bento),
                                "ports": [{"name": "http", "containerPort": CONTAINER_PORT}],
                                "env": [
                                    {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
                                    {"name": "MODEL_ENV", "value": env},
                                ],
                                "resources": resources,
                                "readinessProbe": {
                                    **probe,
                                    "httpGet": {"path": "/readyz", "port": "http"},
                                    "initialDelaySeconds": 5,
                                },
                                "livenessProbe": {
                                    **probe,
                                    "httpGet": {"path": "/livez", "port": "http"},
                                    "initialDelaySeconds": 30,
                                    "failureThreshold": 3,
                                },
                            }
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": meta,
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
            "metadata": meta,
            "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}},
        },
    ]


def write(manifests: list[dict[str, Any]], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False))
    return path


def apply(path: Path, context: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise KubernetesError(f"kubectl is not installed; the manifests are in {path}")
    result = subprocess.run(
        [kubectl, "--context", context, "apply", "-f", str(path)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise KubernetesError(f"kubectl apply exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result.stdout


def containerize(python: Path, bento: str, tag: str, env: dict[str, str]) -> None:
    """`bentoml containerize`; without a Docker daemon (as on the dev machines) it fails with a clear message."""
    result = subprocess.run(
        [str(python), "-m", "bentoml", "containerize", bento, "-t", tag],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        if "not healthy" in output or "Cannot connect to the Docker daemon" in output or "docker" in output.lower():
            raise KubernetesError(
                "bentoml containerize needs a running Docker daemon, and there is none here; "
                "it runs in the GitHub deploy workflow (ubuntu runners have Docker)"
            )
        raise KubernetesError(f"bentoml containerize exited {result.returncode}: {output[-500:]}")


def push(tag: str) -> None:
    docker = shutil.which("docker")
    if docker is None:
        raise KubernetesError(f"docker is not installed: cannot push {tag}")
    result = subprocess.run([docker, "push", tag], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KubernetesError(f"docker push {tag} exited {result.returncode}: {result.stderr.strip()[-500:]}")
