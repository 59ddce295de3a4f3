"""The `bentocloud` target: the `bentoml deploy -f` configuration, deployed when credentials exist."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from modelctl.errors import ModelctlError
from modelkit import ModelConfig


class BentoCloudError(ModelctlError):
    pass


def render(config: ModelConfig, bento: str, env: str, service: str) -> dict[str, Any]:
    scaling = config.deploy.scaling
    document: dict[str, Any] = {
        "name": f"{config.name.replace('_', '-')}-{env}",
        "bento": bento,
        "access_authorization": env == "production",
        "envs": [{"name": "MODEL_ENV", "value": env}],
        "services": {
            service: {
                "instance_type": config.deploy.instance_type or "cpu.1",
                "scaling": {"min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas},
            }
        },
    }
    if config.deploy.bentocloud.cluster:
        document["cluster"] = config.deploy.bentocloud.cluster
    return document


def write(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def deploy(python: Path, path: Path, env: dict[str, str]) -> str:
    if not os.environ.get("BENTO_CLOUD_API_KEY"):
        raise BentoCloudError(f"BENTO_CLOUD_API_KEY is not set: rendered {path} but did not deploy it")
    result = subprocess.run(
        [str(python), "-m", "bentoml", "deploy", "-f", str(path)], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        raise BentoCloudError(f"bentoml deploy exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result.stdout
