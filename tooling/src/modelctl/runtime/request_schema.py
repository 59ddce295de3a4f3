"""Print the JSON schema of one request row (``api_schema.Features``) of the model folder in the current directory.

    python request_schema.py    ->    {"schema": {...}}   or   {"schema": null, "reason": "..."}

Runs with the model's own python, in a process of its own: the load-test gate reads this line as plain data
(modelctl checks it and keeps only numeric bounds), so its Locust process never imports the model's code.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path


def main() -> int:
    sys.path.insert(0, str(Path.cwd()))
    try:
        features = importlib.import_module("api_schema").Features
    except (ImportError, AttributeError) as exc:  # as modelkit.loadtest: the sample's values are used as they are
        print(json.dumps({"schema": None, "reason": f"{type(exc).__name__}: {exc}"}))
        return 0
    print(json.dumps({"schema": features.model_json_schema()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
