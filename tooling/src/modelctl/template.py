"""The model template's own answer rules, loaded from `cookiecutter-model/hooks/pre_gen_project.py`.

The hook file is the single copy of the rules (plain `cookiecutter` users run it as a hook);
importing it as a module runs only its definitions, not the rendered check at the bottom.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import cast

AnswerRules = Callable[[dict[str, str]], list[str]]


def answer_rules(template_dir: Path) -> AnswerRules:
    path = template_dir / "hooks" / "pre_gen_project.py"
    spec = importlib.util.spec_from_file_location("modelctl_template_hook", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load template rules from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return cast(AnswerRules, module.answer_problems)


def default_slug(name: str) -> str:
    """The slug cookiecutter derives from a model name (mirrors cookiecutter.json)."""
    return name.strip().lower().replace(" ", "_").replace("-", "_")
