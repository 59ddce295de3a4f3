"""Build a bento of the model folder in the current directory; print {"bento", "model"} as JSON.

    python build_bento.py SPEC.json

SPEC: {"name", "model_tag" (null: the newest), "labels", "requirements_txt", "wheels"}. Runs with the model's
own python. An expected failure prints {"error": "<what to do>"} and exits 1.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import bentoml
from bentoml.exceptions import NotFound


def fail(message: str) -> int:
    print(json.dumps({"error": message}))
    return 1


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, str(Path.cwd()))
    name = spec["name"]
    wanted = spec.get("model_tag") or f"{name}:latest"
    try:
        model = bentoml.models.get(wanted)
    except NotFound:
        if spec.get("model_tag"):
            return fail(f"model {wanted} is not in the store")
        return fail(f"there is no trained model {name!r} in the store; run `modelctl train {name}` first")
    # Pin the exact model into the bento (modelkit.model_ref reads this file), before the
    # service module is imported and resolves its BentoModel.
    pin = Path.cwd() / "modelctl-build" / "MODEL_TAG"
    pin.write_text(str(model.tag))
    module = importlib.import_module("service")
    services = [attr for attr, value in vars(module).items() if isinstance(value, bentoml.Service)]
    if len(services) != 1:
        return fail(f"service.py must define exactly one @bentoml.service class, found {services}")
    bento = bentoml.bentos.build(
        f"service:{services[0]}",
        name=name,
        labels={**spec["labels"], "model_tag": str(model.tag).replace(":", "_")},
        include=["*.py", "config.yaml", "sample_request.json", "requirements.txt", "modelctl-build/MODEL_TAG"],
        exclude=[
            "tests/",
            "notebooks/",
            "locustfile.py",
            "modelctl-build/*.whl",
            "modelctl-build/*.json",
            "modelctl-build/requirements.txt",
        ],
        python={"requirements_txt": spec["requirements_txt"], "wheels": spec["wheels"], "lock_packages": False},
        build_ctx=str(Path.cwd()),
    )
    print(json.dumps({"bento": str(bento.tag), "model": str(model.tag)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
