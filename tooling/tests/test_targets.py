"""Kubernetes and BentoCloud configurations rendered from config.yaml, validated offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from modelctl.targets import bentocloud, kubernetes
from modelkit import parse_config

BASE = "name: churn_model\ndescription: d\nowner: o\nframework: sklearn\n"
K8S = BASE + (
    "deploy:\n  targets: [local, kubernetes, bentocloud]\n"
    "  resources: {cpu: 500m, memory: 2Gi, gpu: 1}\n"
    "  scaling: {min_replicas: 2, max_replicas: 7, target_cpu_percent: 60}\n"
    "  instance_type: cpu.2\n"
    "  kubernetes: {namespace: ml, image_repository: ghcr.io/acme/models}\n"
)


@pytest.fixture
def manifests() -> list[dict]:
    return kubernetes.render(parse_config(K8S), "churn_model:abc123", "staging")


def test_every_manifest_is_valid_kubernetes(manifests: list[dict]) -> None:
    assert [m["kind"] for m in manifests] == ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.30", strict=True)


def test_invalid_manifest_is_caught_by_the_validator(manifests: list[dict]) -> None:
    broken = dict(manifests[0])
    broken["spec"] = {**broken["spec"], "replicas": "two"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_values_come_from_config(manifests: list[dict]) -> None:
    deployment, service, hpa, pdb = manifests
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/acme/models/churn_model:abc123"
    assert container["resources"]["requests"] == {"cpu": "500m", "memory": "2Gi"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert deployment["metadata"]["namespace"] == "ml" and deployment["metadata"]["name"] == "churn-model-staging"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 7)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 60
    assert service["spec"]["selector"] == pdb["spec"]["selector"]["matchLabels"]


def test_written_file_is_a_multi_document_yaml(manifests: list[dict], tmp_path: Path) -> None:
    path = kubernetes.write(manifests, tmp_path / "k8s.yaml")
    assert list(yaml.safe_load_all(path.read_text())) == manifests


def test_kubernetes_target_requires_an_image_repository() -> None:
    with pytest.raises(ValueError, match="kubernetes.image_repository must be set"):
        parse_config(BASE + "deploy: {targets: [kubernetes]}\n")


def test_apply_to_an_unknown_context_fails_clearly(manifests: list[dict], tmp_path: Path) -> None:
    path = kubernetes.write(manifests, tmp_path / "k8s.yaml")
    expected = "kubectl apply exited" if shutil.which("kubectl") else "kubectl is not installed; the manifests are in"
    with pytest.raises(kubernetes.KubernetesError, match=expected):
        kubernetes.apply(path, "no-such-context")


def test_bentocloud_config() -> None:
    document = bentocloud.render(parse_config(K8S), "churn_model:abc123", "production", "ChurnModel")
    assert document == {
        "name": "churn-model-production",
        "bento": "churn_model:abc123",
        "access_authorization": True,
        "envs": [{"name": "MODEL_ENV", "value": "production"}],
        "services": {"ChurnModel": {"instance_type": "cpu.2", "scaling": {"min_replicas": 2, "max_replicas": 7}}},
    }


def test_bentocloud_without_credentials_does_not_deploy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BENTO_CLOUD_API_KEY", raising=False)
    path = bentocloud.write({"name": "x"}, tmp_path / "bentocloud.yaml")
    with pytest.raises(bentocloud.BentoCloudError, match="BENTO_CLOUD_API_KEY is not set: rendered"):
        bentocloud.deploy(Path("/nonexistent/python"), path, {})
