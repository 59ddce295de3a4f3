"""Write (or check) ``config.schema.json`` from the pydantic definition.

``python -m modelkit.schema`` rewrites it; ``python -m modelkit.schema --check`` exits 1
when the committed file differs from what the models produce.
"""

from __future__ import annotations

import json
import sys

from modelkit.config import ModelConfig, schema_path


def render() -> str:
    schema = ModelConfig.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = schema_path()
    text = render()
    if "--check" in args:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{path} is out of date: run python -m modelkit.schema", file=sys.stderr)
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
