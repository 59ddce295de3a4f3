"""The model template's Jinja extension: answers are data, never templates (issue 15).

cookiecutter renders every answer as a Jinja template before using it (`prompt.render_variable`), so
an answer such as ``{{ cycler.__init__.__globals__.os.getcwd() }}`` ran Python at bake time. Listed in
cookiecutter.json `_extensions`, this extension (cookiecutter imports it from the template folder)
rewrites, before Jinja reads it, every string that is not the template's own into a template that
prints the string as it is. The template's own strings are the values in its cookiecutter.json, its
hook scripts, its file and folder names, and its files. It also adds the filters the template's files
use to quote answers (`yaml_string`, `json_string`), the global `template_folder`, the absolute path
of the template being baked (hooks run in the new model's folder and need it), and the filter
`check_answers`, which cookiecutter.json applies once every answer is known: cookiecutter creates the
model's folder before the pre-generation hook runs, so a slug like `a/b` would leave `a/` behind.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from cookiecutter.exceptions import FailedHookException
from jinja2 import Environment
from jinja2.ext import Extension

_MODULE = Path(__file__).name


def _is_template(folder: Path) -> bool:
    return (folder / "cookiecutter.json").is_file() and (folder / _MODULE).is_file()


def template_folder() -> Path:
    """The folder of the template being baked.

    cookiecutter appends the template folder to `sys.path` for the length of a bake (that is how it
    imports this module), maybe as a relative path. This module may have been imported from another
    folder by an earlier bake in the same process, so `__file__` is not the answer. Hook scripts are
    rendered from inside the template folder, where a relative entry no longer resolves: then the
    current folder is it.
    """
    here = Path.cwd()
    for entry in reversed(sys.path):
        candidate = here / entry
        if _is_template(candidate):
            return candidate.resolve()
        if entry and not Path(entry).is_absolute() and here.name == Path(entry).name and _is_template(here):
            return here.resolve()
    return Path(__file__).resolve().parent


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _own_strings(folder: Path, environment: Environment) -> tuple[set[str], set[str]]:
    """The template's own strings that cookiecutter renders from strings, and its templated sub-folder paths."""
    own = set(_strings(json.loads((folder / "cookiecutter.json").read_text(encoding="utf-8"))))
    hooks = folder / "hooks"
    for hook in sorted(hooks.iterdir()) if hooks.is_dir() else ():
        if hook.is_file():
            try:
                own.add(hook.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                continue
    templated_dirs: set[str] = set()
    start = environment.variable_start_string
    for project in folder.iterdir():  # the {{cookiecutter.x}} folder, found as cookiecutter finds it
        if not (project.is_dir() and "cookiecutter" in project.name and start in project.name):
            continue
        own.add(project.name)
        for root, dirs, files in os.walk(project):
            for name in (*dirs, *files):
                relative = os.path.relpath(os.path.join(root, name), project)
                own.add(relative)
                if name in dirs and start in relative:
                    templated_dirs.add(relative)
    return own, templated_dirs


def literal(text: str, environment: Environment) -> str:
    """A template that renders to exactly ``text``: one string expression, every other character escaped."""
    body = "".join(c if c.isascii() and c.isalnum() else f"\\U{ord(c):08x}" for c in text)
    return f'{environment.variable_start_string} "{body}" {environment.variable_end_string}'


def yaml_string(value: object) -> str:
    """``value`` as a YAML double-quoted scalar that reads back as the same text.

    Not `tojson`: PyYAML reads JSON's surrogate pairs (an emoji) back as two broken characters, and
    `tojson` writes `&`, `'`, `<`, `>` as \\u escapes.
    """
    out = []
    for char in str(value):
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD and code != 0xFEFF:
            out.append(char)
        elif code >= 0x10000:
            out.append(char)
        else:
            out.append(f"\\u{code:04x}")
    return '"' + "".join(out) + '"'


def json_string(value: object) -> str:
    """``value`` as the inside of a JSON string (for text placed between quotes in a .ipynb file)."""
    return json.dumps(str(value), ensure_ascii=False)[1:-1]


def check_answers(folder: Path, answers: Mapping[str, object]) -> str:
    """Refuse ``answers`` with the template's rules (hooks/model_template.py) before anything is written."""
    spec = importlib.util.spec_from_file_location("model_template_rules", folder / "hooks" / "model_template.py")
    assert spec is not None and spec.loader is not None
    rules = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rules)
    problems = rules.answer_problems(answers, rules.template_choices(folder))
    if problems:
        # The exception cookiecutter reports as one message (its CLI exits 1), like a refusing hook.
        raise FailedHookException("; ".join(problems) + "; nothing was created")
    return "ok"


class LiteralAnswers(Extension):
    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        folder = template_folder()
        self._own, self._templated_dirs = _own_strings(folder, environment)
        environment.globals["template_folder"] = str(folder)
        environment.filters["yaml_string"] = yaml_string
        environment.filters["json_string"] = json_string
        environment.filters["check_answers"] = lambda answers: check_answers(folder, answers)

    def _is_own(self, source: str) -> bool:
        if source in self._own:
            return True
        # A templated sub-folder is rendered as <new model folder>/./<path>: its path, under a plain prefix.
        path = os.path.normpath(source)
        env = self.environment
        markers = [m for m in (env.variable_start_string, env.block_start_string, env.comment_start_string) if m]
        for relative in self._templated_dirs:
            prefix = path[: -len(relative)]
            if path.endswith(os.sep + relative) and not any(m in prefix for m in markers):
                return True
        return False

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        # A named template is one of the template's files, loaded from its folder.
        if name is not None or self._is_own(source):
            return source
        return literal(source, self.environment)
