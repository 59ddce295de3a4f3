"""Refuse bad answers before any file is written; cookiecutter then removes the new folder.

Standard library only: plain `cookiecutter` users have nothing else. `modelctl new` imports
this file (the rendered answers below only run as a script) to refuse the same answers
before it calls cookiecutter.
"""

from __future__ import annotations

import json
import keyword
import re
import sys

SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_SLUG = 40
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "pytorch")
# Packages every model environment imports: a model folder named like one would shadow it
# when tests run from the folder.
RESERVED = frozenset({"bentoml", "modelkit", "modelctl", "sklearn", "xgboost", "lightgbm", "torch", "numpy",
                      "pandas", "pydantic", "locust", "tests", "notebooks", "shared", "models"})


def slug_problems(slug: str) -> list[str]:
    if not SLUG_RE.match(slug):
        return [f"model_slug {slug!r} must match [a-z][a-z0-9_]* (lowercase letter first, then lowercase letters, digits or _)"]
    if len(slug) > MAX_SLUG:
        return [f"model_slug {slug!r} is {len(slug)} characters; the limit is {MAX_SLUG}"]
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug):
        return [f"model_slug {slug!r} is a Python keyword; choose another name"]
    if slug in sys.stdlib_module_names:
        return [f"model_slug {slug!r} is a Python standard-library module name; choose another name"]
    if slug in RESERVED:
        return [f"model_slug {slug!r} is reserved (it would shadow a package models import); choose another name"]
    return []


def answer_problems(answers: dict[str, str]) -> list[str]:
    problems = slug_problems(answers.get("model_slug", ""))
    if answers.get("framework") not in FRAMEWORKS:
        problems.append(f"framework {answers.get('framework')!r} must be one of {', '.join(FRAMEWORKS)}")
    for key in ("model_name", "description", "owner"):
        if not answers.get(key, "").strip():
            problems.append(f"{key} must not be empty")
    for key in ("description", "owner"):
        if '"' in answers.get(key, "") or "\n" in answers.get(key, ""):
            problems.append(f"{key} must not contain double quotes or line breaks")
    return problems


def main(answers: dict[str, str]) -> int:
    found = answer_problems(answers)
    for problem in found:
        print(f"ERROR: {problem}", file=sys.stderr)
    if found:
        print("ERROR: nothing was created", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(json.loads({{ cookiecutter | tojson | tojson }})))
