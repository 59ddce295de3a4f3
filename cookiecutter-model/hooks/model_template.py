"""What the model template's hooks do: refuse bad answers, give the model its own ports, record its origin.

Standard library only: plain `cookiecutter` users have nothing else installed. The hook scripts beside
this file are a few lines that load it; `modelctl new` loads it too (`modelctl.template`), so the CLI
and plain cookiecutter refuse the same answers with the same words.
"""

from __future__ import annotations

import json
import keyword
import os
import re
import subprocess
import sys
import tempfile
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_SLUG = 40
# description and owner: the config schema's limits (modelkit.config; a test keeps them equal).
TEXT_LIMITS = {"model_name": 200, "description": 500, "owner": 200}
# Packages every model environment imports: a model folder named like one would shadow it
# when tests run from the folder.
RESERVED = frozenset(
    {
        "bentoml",
        "modelkit",
        "modelctl",
        "sklearn",
        "xgboost",
        "lightgbm",
        "torch",
        "catboost",
        "tensorflow",
        "keras",
        "onnx",
        "onnxruntime",
        "skl2onnx",
        "numpy",
        "pandas",
        "pydantic",
        "locust",
        "tests",
        "notebooks",
        "shared",
        "models",
    }
)
# Bidirectional-text controls reorder what a reviewer sees in the README, config and notebook ("Trojan Source").
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

PORT_ENVS = ("dev", "staging", "production")
DEFAULT_PORTS = {"dev": 3000, "staging": 3100, "production": 3200}  # the config schema's defaults
RECORD = ".template.json"


# --- answers -------------------------------------------------------------------------------------------------


def template_choices(template_dir: Path) -> dict[str, tuple[str, ...]]:
    """The choice answers and their options, from the template's own cookiecutter.json."""
    data = json.loads((template_dir / "cookiecutter.json").read_text(encoding="utf-8"))
    return {k: tuple(v) for k, v in data.items() if isinstance(v, list) and not k.startswith("_")}


def derived_slug(model_name: str) -> str:
    """The slug cookiecutter.json derives from the model name (`model_slug`; a test keeps them equal)."""
    return model_name.strip().lower().replace(" ", "_").replace("-", "_")


def service_class(slug: str) -> str:
    """The service class name cookiecutter.json derives from the slug (`__service_class`)."""
    return slug.title().replace("_", "")


def slug_problems(slug: str, derived_from: str | None = None) -> list[str]:
    hint = ""
    if derived_from is not None:
        hint = f" (derived from model_name {derived_from!r}: choose a model_slug, `modelctl new --slug`)"
    if not re.fullmatch(r"[a-z][a-z0-9_]*", slug):
        return [
            f"model_slug {slug!r} must match [a-z][a-z0-9_]* (lowercase letter first, then lowercase letters, "
            f"digits or _){hint}"
        ]
    if len(slug) > MAX_SLUG:
        return [f"model_slug {slug!r} is {len(slug)} characters; the limit is {MAX_SLUG}{hint}"]
    if keyword.iskeyword(slug) or keyword.issoftkeyword(slug) or keyword.iskeyword(service_class(slug)):
        return [f"model_slug {slug!r} is a Python keyword (or its service class would be); choose another name"]
    if service_class(slug) in ("I", "O", "l"):  # ruff E742: reads like 1 or 0
        return [
            f"model_slug {slug!r} makes the service class {service_class(slug)!r}, an ambiguous name; choose another"
        ]
    if slug in sys.stdlib_module_names:
        return [f"model_slug {slug!r} is a Python standard-library module name; choose another name"]
    if slug in RESERVED:
        return [f"model_slug {slug!r} is reserved (it would shadow a package models import); choose another name"]
    return []


def text_problems(key: str, value: object) -> list[str]:
    """A free-text answer is taken literally; it must be one line of printable text within the limit."""
    if not isinstance(value, str):
        return [f"{key} must be text"]
    if not value.strip():
        return [f"{key} must not be empty"]
    if len(value) > TEXT_LIMITS[key]:
        return [f"{key} is {len(value)} characters; the limit is {TEXT_LIMITS[key]}"]
    for char in value:
        category = unicodedata.category(char)
        if char in "\n\r\x0b\x0c\x85\u2028\u2029" or category in ("Zl", "Zp"):
            return [f"{key} must be one line (it contains a line break)"]
        # Format characters (zero-width space, BOM, soft hyphen ...) are invisible; the zero-width joiner of
        # emoji sequences is the one kept.
        invisible = category == "Cf" and char != "\u200d"
        if category in ("Cc", "Cs") or invisible or char in BIDI_CONTROLS or char in "\ufffe\uffff":
            return [f"{key} contains U+{ord(char):04X}, a control or invisible character; use printable text"]
    return []


# The input kinds (answer `input`) and the frameworks and tasks the template has a working example for (issue 21);
# tabular works with every framework and task. A test bakes, trains and serves every combination allowed here.
INPUT_EXAMPLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "text": (("sklearn",), ("classification",)),
    "image": (("sklearn", "pytorch", "tensorflow"), ("classification",)),
    # ids looked up in the shared Feast repository (shared/feature_repo): the example predicts customer churn
    "entity": (("sklearn",), ("classification",)),
}


def combination_problems(answers: Mapping[str, object]) -> list[str]:
    """Refuse a framework x task x input combination the template has no example for."""
    kind = answers.get("input", "tabular")
    if kind not in INPUT_EXAMPLES:
        return []
    frameworks, tasks = INPUT_EXAMPLES[str(kind)]
    framework, task = answers.get("framework"), answers.get("task")
    if framework in frameworks and task in tasks:
        return []
    return [
        f"input {kind!r} comes with an example for framework {' or '.join(frameworks)} and task "
        f"{' or '.join(tasks)}, not framework {framework!r} with task {task!r}: choose one of those (or input tabular)"
    ]


def answer_problems(answers: Mapping[str, object], choices: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Every reason to refuse ``answers`` (empty when they bake a valid model).

    A choice that is not answered takes its first option: a record from before the choice existed (an `input`
    answer, issue 21) upgrades as the template then behaved."""
    problems = []
    for key in TEXT_LIMITS:
        problems += text_problems(key, answers.get(key, ""))
    slug, name = answers.get("model_slug", ""), answers.get("model_name", "")
    if not isinstance(slug, str):
        problems.append("model_slug must be text")
    elif isinstance(name, str) and slug == derived_slug(name) and slug != name:
        problems += slug_problems(slug, derived_from=name)
    else:
        problems += slug_problems(slug)
    for key, options in choices.items():
        if answers.get(key, options[0]) not in options:
            problems.append(f"{key} {answers.get(key)!r} must be one of {', '.join(options)}")
    if not problems:
        problems += combination_problems(answers)
    return problems


def pre_gen(context: Mapping[str, Any], template_dir: Path) -> int:
    problems = answer_problems(context, template_choices(template_dir))
    for problem in problems:
        print(f"ERROR: {problem}", file=sys.stderr)
    if problems:
        print("ERROR: nothing was created", file=sys.stderr)
    return 1 if problems else 0


# --- ports ---------------------------------------------------------------------------------------------------

_PORT = re.compile(r"\b(dev|staging|production)\s*:\s*(\d+)")


def ports_in(config_text: str) -> dict[str, int]:
    """The `serving.ports` of a config.yaml, read without a YAML library; unset ports are the schema defaults.

    Reads block (`ports:` + indented lines) and flow (`ports: {dev: 3010, ...}`) style.
    """
    ports = dict(DEFAULT_PORTS)
    lines = config_text.splitlines()
    section = None
    for index, line in enumerate(lines):
        code = line.split("#", 1)[0].rstrip()
        if not code.strip():
            continue
        indent = len(code) - len(code.lstrip())
        if indent == 0:
            section, _, rest = code.partition(":")
            if section == "serving" and "ports" in rest:  # serving: {ports: {...}, ...}
                ports.update((env, int(port)) for env, port in _PORT.findall(rest.split("ports", 1)[1]))
                break
            continue
        if section != "serving" or not code.lstrip().startswith("ports:"):
            continue
        body = [code.split(":", 1)[1]]
        for following in lines[index + 1 :]:
            more = following.split("#", 1)[0].rstrip()
            if more.strip() and len(more) - len(more.lstrip()) <= indent:
                break
            body.append(more)
        ports.update((env, int(port)) for env, port in _PORT.findall("\n".join(body)))
        break
    return ports


def used_ports(models_dir: Path, exclude: Path | None = None) -> set[int]:
    """Every port a model in ``models_dir`` (other than ``exclude``) uses, in any environment."""
    used: set[int] = set()
    for config in sorted(models_dir.glob("*/config.yaml")):
        if exclude is not None and config.parent.resolve() == exclude.resolve():
            continue
        try:
            text = config.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = ""  # unreadable: assume the defaults, so they stay taken
        used.update(ports_in(text).values())
    return used


def free_block(used: set[int]) -> dict[str, int]:
    """The first port block none of whose ports is in ``used``.

    Blocks keep the schema's layout, one hundred per environment: dev 3000+k, staging 3100+k, production
    3200+k for k < 100, then the same from 3300, 3600, ... So the first model gets the defaults.
    """
    base = DEFAULT_PORTS["dev"]
    while base + 299 <= 65535:
        for offset in range(100):
            block = {env: base + 100 * step + offset for step, env in enumerate(PORT_ENVS)}
            if used.isdisjoint(block.values()):
                return block
        base += 300
    raise RuntimeError("no free port block left between 3000 and 65535")


_PORTS_LINE = re.compile(r"^(?P<lead>[ ]+ports:[ ]*)\{[^}\n]*\}", re.MULTILINE)


def assign_ports(project_dir: Path) -> dict[str, int]:
    """Write a port block no sibling model uses into ``project_dir/config.yaml``'s `serving.ports` line."""
    block = free_block(used_ports(project_dir.parent, exclude=project_dir))
    config = project_dir / "config.yaml"
    text = config.read_text(encoding="utf-8")
    flow = "{" + ", ".join(f"{env}: {port}" for env, port in block.items()) + "}"
    new, count = _PORTS_LINE.subn(lambda m: m["lead"] + flow, text, count=1)
    if count != 1:
        raise RuntimeError(f"{config} has no `ports: {{...}}` line under serving to write the ports into")
    config.write_text(new, encoding="utf-8")
    return block


# --- where the model came from -------------------------------------------------------------------------------


def _git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def template_source(template_dir: Path) -> tuple[str | None, str | None]:
    """(tree id of the template folder's content as it is on disk, HEAD commit); (None, None) outside git.

    The tree id is the one git would give the folder if it were committed now (so equal to
    `git rev-parse HEAD:<folder>` when the folder is committed and clean): the folder is added to a
    throw-away index, never to the repository's own.
    """
    top = _git("rev-parse", "--show-toplevel", cwd=template_dir)
    prefix = _git("rev-parse", "--show-prefix", cwd=template_dir)
    if top is None or prefix is None:
        return None, None
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "GIT_INDEX_FILE": os.path.join(scratch, "index")}
        added = _git("add", "--all", "--", prefix or ".", cwd=Path(top), env=env)
        tree = _git("write-tree", f"--prefix={prefix}", cwd=Path(top), env=env) if added is not None else None
    commit = _git("rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=Path(top))
    return tree or None, commit or None


def record(context: Mapping[str, Any], template_dir: Path) -> dict[str, Any]:
    """The `.template.json` content: the answers (in cookiecutter.json's order) and the template version.

    `template` is the template folder's path in its repository (its name outside git).
    """
    order = json.loads((template_dir / "cookiecutter.json").read_text(encoding="utf-8"))
    answers = {k: context[k] for k in order if not k.startswith("_") and k in context}
    tree, commit = template_source(template_dir)
    folder = _git("rev-parse", "--show-prefix", cwd=template_dir) or template_dir.name
    return {
        "template": folder.rstrip("/"),
        "template_tree": tree,
        "template_commit": commit,
        "answers": answers,
    }


def write_record(project_dir: Path, context: Mapping[str, Any], template_dir: Path) -> Path:
    path = project_dir / RECORD
    path.write_text(json.dumps(record(context, template_dir), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def remove_unused(project_dir: Path, context: Mapping[str, Any]) -> None:
    """Files the model's input kind does not use: only tabular models read training data with SQL."""
    if context.get("input", "tabular") != "tabular":
        (project_dir / "queries" / "training.sql").unlink()
        (project_dir / "queries").rmdir()


def post_gen(context: Mapping[str, Any], template_dir: Path, project_dir: Path) -> int:
    remove_unused(project_dir, context)
    ports = assign_ports(project_dir)
    write_record(project_dir, context, template_dir)
    slug = context["model_slug"]
    print(f"Created {project_dir} (local ports: {', '.join(f'{k} {v}' for k, v in ports.items())})")
    print(f"Next, from the repository root: modelctl lock {slug}   (its environment, pinned with hashes)")
    print(f"      then: tox -e model-{slug}   (its tests, in that environment)")
    print(f"      then: modelctl pipeline {slug}   (train, build, fuzz, load-test gate, deploy to local staging)")
    return 0
