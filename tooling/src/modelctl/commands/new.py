"""`modelctl new`: create `models/<slug>/` from the model template (same questions, same rules)."""

from __future__ import annotations

import argparse
from pathlib import Path

from modelctl.console import err, out
from modelctl.errors import TemplateError
from modelctl.repo import Repo, find_repo
from modelctl.template import load_template
from modelkit import FRAMEWORKS, INPUTS, TASKS

FIELDS = ("model_name", "model_slug", "description", "owner", "framework", "task", "input")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "new",
        help="create models/<slug>/ from the model template",
        description="Without --no-input, cookiecutter asks for every answer not given here. Answers are taken "
        "literally (never rendered as templates).",
    )
    parser.add_argument("model_name", nargs="?", help='free-text name, e.g. "Churn Predictor"')
    parser.add_argument("--slug", dest="model_slug", help="folder/service name (default: derived from the name)")
    parser.add_argument("--description")
    parser.add_argument("--owner")
    parser.add_argument("--framework", choices=FRAMEWORKS)
    parser.add_argument("--task", choices=TASKS)
    parser.add_argument("--input", choices=INPUTS, help="what a request carries (default: tabular)")
    parser.add_argument("--no-input", action="store_true", help="do not prompt; use defaults for the rest")
    parser.add_argument("--output-dir", type=Path, help="where to create the model (default: the repo's models/)")
    parser.add_argument(
        "--no-lock", action="store_true", help="do not write requirements.lock now (`modelctl lock SLUG` later)"
    )
    parser.set_defaults(
        run=lambda a: new(
            find_repo(),
            {k: getattr(a, k) for k in FIELDS if getattr(a, k) is not None},
            no_input=a.no_input,
            output_dir=a.output_dir,
            lock=not a.no_lock,
        )
    )


def new(
    repo: Repo,
    answers: dict[str, str],
    no_input: bool = False,
    output_dir: Path | None = None,
    lock: bool = True,
) -> int:
    # cookiecutter (and jinja2, requests) cost ~0.3 s to import: only `new` pays for them.
    from cookiecutter.exceptions import (
        CookiecutterException,
        FailedHookException,
        OutputDirExistsException,
    )
    from cookiecutter.main import cookiecutter

    target = (output_dir or repo.models_dir).resolve()
    if no_input:
        _precheck(repo, answers, target)
    try:
        created = cookiecutter(str(repo.template_dir), output_dir=str(target), no_input=no_input, extra_context=answers)
    except OutputDirExistsException as exc:
        raise TemplateError(f"{exc}; a model with this slug exists: choose another --slug") from exc
    except FailedHookException as exc:
        raise TemplateError(f"the template refused the answers ({exc}); nothing was created") from exc
    except CookiecutterException as exc:
        raise TemplateError(f"cookiecutter failed: {exc}") from exc
    except EOFError as exc:  # prompting with nothing to read (stdin closed, no terminal)
        raise TemplateError(
            "no answers to read (stdin is closed): give them as options, or pass --no-input for the defaults; "
            "nothing was created"
        ) from exc
    out.print(f"created {created}", markup=False)  # the template's own hook printed what to do next
    if lock:
        _lock(Path(created))
    return 0


def _lock(folder: Path) -> None:
    """The new model's requirements.lock; a model without one is still created (the lock needs the package index)."""
    from uv import find_uv_bin

    from modelctl.envs import installer_env
    from modelctl.lockfile import LockError, make

    try:
        made = make(folder, str(find_uv_bin()), installer_env())
    except LockError as exc:
        err.print(
            f"warning: no requirements.lock yet: {exc}\nrun `modelctl lock {folder.name}` before committing",
            markup=False,
        )
        return
    out.print(made.message, markup=False)


def _precheck(repo: Repo, answers: dict[str, str], target: Path) -> None:
    """Refuse bad answers with the template's own rules before cookiecutter writes anything."""
    template = load_template(repo.template_dir)
    defaults = template.defaults()
    full = {k: answers.get(k, defaults[k][0] if isinstance(defaults[k], list) else defaults[k]) for k in FIELDS}
    if "model_slug" not in answers:
        full["model_slug"] = template.derived_slug(full["model_name"])
    problems = template.problems(full)
    if problems:
        raise TemplateError("; ".join(problems) + "; nothing was created")
    if (target / full["model_slug"]).exists():
        raise TemplateError(
            f"model_slug {full['model_slug']!r}: {target / full['model_slug']} already exists; choose another --slug"
        )
