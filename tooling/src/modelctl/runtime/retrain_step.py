"""Extract -> train a candidate -> evaluate candidate and champion on the same fresh holdout.

    python retrain_step.py SPEC.json      (in the model folder, with the model's python)

SPEC: {"champion": tag or null, "save": bool}. Prints one JSON line: candidate and champion metrics,
the candidate's tag when saved, or {"failed_step", "reason"} (exit 5) when a step fails.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path


def fail(step: str, exc: BaseException) -> int:
    print(json.dumps({"failed_step": step, "reason": f"{type(exc).__name__}: {exc}"}))
    traceback.print_exc(file=sys.stderr)
    return 5


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    sys.path.insert(0, str(Path.cwd()))
    step = "extract"
    try:
        import bentoml

        import model_io
        import train

        data = train.load_data()
        train_set, holdout = train.split(data)
        step = "train"
        candidate = train.fit(train.build_model(), train_set)
        step = "evaluate"
        result = {"rows": int(len(data.target)), "candidate_metrics": train.evaluate(candidate, holdout)}
        if spec.get("champion"):
            champion = model_io.load(bentoml.models.get(spec["champion"]))
            result["champion_metrics"] = train.evaluate(champion, holdout)
        if spec.get("save"):
            step = "save"
            labels = {"framework": "retrain", "git_commit": train.git_commit(), "stage": "candidate"}
            result["candidate"] = model_io.save(candidate, result["candidate_metrics"], labels)
    except Exception as exc:  # noqa: BLE001 - any failure is reported with its step
        return fail(step, exc)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
