"""One phase of retraining, run with the model's python in the model folder.

    python retrain_step.py SPEC.json

SPEC: {"phase": "extract" | "train" | "evaluate", "run_dir": path, "candidate": tag, "champion": tag or null}.
extract saves fresh data to RUN_DIR/data.npz; train fits on its training split and saves a candidate
version; evaluate scores candidate and champion on the same holdout. Prints one JSON line: the result,
or {"failed_step", "reason"} (and exits 1) when the phase failed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    import model_io
    import train

    data_file = Path(spec["run_dir"]) / "data.npz"
    if spec["phase"] == "extract":
        data = train.load_data()
        np.savez(data_file, features=data.features, target=data.target)
        return {"rows": int(len(data.target))}
    with np.load(data_file, allow_pickle=True) as saved:  # text features are object arrays; this run's own file
        data = train.Dataset(saved["features"], saved["target"])
    train_set, holdout = train.split(data)
    if spec["phase"] == "train":
        candidate = train.fit(train.build_model(), train_set)
        metrics = train.evaluate(candidate, holdout)
        labels = {"framework": spec.get("framework", "retrain"), "git_commit": train.git_commit(), "stage": "candidate"}
        tag = model_io.save(candidate, metrics, labels)
        if hasattr(train, "remember"):  # the training reference, which monitoring compares the log with
            train.remember(tag, candidate, train_set)
        return {"candidate": tag}
    result = {"candidate_metrics": train.evaluate(model_io.load(stored(spec["candidate"], "candidate")), holdout)}
    if spec.get("champion"):
        result["champion_metrics"] = train.evaluate(model_io.load(stored(spec["champion"], "champion")), holdout)
    return result


def stored(tag: str, role: str) -> Any:
    """The model ``tag`` from the BentoML store; a one-line error naming the store when it is not there (modelctl
    imports a champion from the state store before this runs: issue 20 item 1)."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        return bentoml.models.get(tag)
    except NotFound:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise LookupError(f"the {role} {tag} is not in the BentoML store {home}") from None


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, str(Path.cwd()))
    try:
        result = run(spec)
    except Exception as exc:  # noqa: BLE001 - any failure is reported with its phase
        print(json.dumps({"failed_step": spec["phase"], "reason": f"{type(exc).__name__}: {exc}"}))
        traceback.print_exc(file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
