"""The model template's own rules, loaded from `cookiecutter-model/hooks/model_template.py`.

That module (standard library only) is the single copy of the rules: the template's hooks run it for
plain `cookiecutter` users, and `modelctl new` checks answers with it before cookiecutter writes anything.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, cast

from modelctl.errors import TemplateError

AnswerRules = Callable[[Mapping[str, object]], list[str]]


@dataclass(frozen=True)
class Template:
    folder: Path
    module: ModuleType

    def defaults(self) -> dict[str, Any]:
        """cookiecutter.json as written (choices as lists, derived answers as Jinja)."""
        return cast(dict[str, Any], json.loads((self.folder / "cookiecutter.json").read_text(encoding="utf-8")))

    def choices(self) -> dict[str, tuple[str, ...]]:
        return cast(dict[str, tuple[str, ...]], self.module.template_choices(self.folder))

    def problems(self, answers: Mapping[str, object]) -> list[str]:
        return cast(list[str], self.module.answer_problems(answers, self.choices()))

    def derived_slug(self, model_name: str) -> str:
        return cast(str, self.module.derived_slug(model_name))


def load_template(folder: Path) -> Template:
    """The template in ``folder`` with its rules module, loaded fresh (each template copy has its own)."""
    path = folder / "hooks" / "model_template.py"
    spec = importlib.util.spec_from_file_location("modelctl_model_template", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise TemplateError(f"{path} is missing: {folder} is not the model template")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Template(folder, module)
