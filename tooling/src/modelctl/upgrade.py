"""Bring template changes into baked models: three-way, file by file, with `git merge-file` (issue 12.3).

Each model records the template tree it was baked from and its answers in `.template.json`. The
template lives in this repository, so every old version of it is in git history: upgrade re-bakes
the recorded tree and HEAD's `cookiecutter-model/` with the same answers (cookiecutter's API, hooks
off, nothing written to $HOME) and merges the difference into the model: model file = current, old
bake = base, new bake = other. Conflicts become ordinary conflict markers, never `.rej` files (the
failure mode of cruft), and one run covers every model of the monorepo with `.git` above them
(cruft #227 and copier #2300 do not).

Upgrades target HEAD's committed template, not the working tree's: the record must name a tree that
stays in history, or the next upgrade could not re-bake it. A bake runs the template's code, so the
recorded tree must be one `cookiecutter-model/` had in HEAD's history, and every write must land inside
the model folder (no symlink out of it).
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import re
import sys
import tarfile
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from modelctl import cmd
from modelctl.errors import ModelctlError, UsageError
from modelctl.repo import MODELS_DIR, TEMPLATE_DIR, Repo
from modelkit import ConfigError, load_config, read_yaml

RECORD_FILE = ".template.json"
TEMPLATE_NAME = TEMPLATE_DIR
# Template paths outside the baked folder that cannot change what a bake writes: hooks are off
# during upgrades and the template's own tests are never rendered (see _inert for the rest).
INERT_PREFIXES = ("hooks/", "tests/")
# A Jinja file that pulls in another one can change when only the other one does.
INCLUDE_PATTERN = r"\{%-?[[:space:]]*(include|import|extends|from)[[:space:]]"
MARKER_PATTERN = r"^<<<<<<<( |$)"
BINARY_SNIFF = 8000
# Keys cookiecutter adds to a context that name paths of this run, not answers.
RUN_KEYS = ("_template", "_output_dir", "_repo_dir", "_checkout")


class UpgradeError(ModelctlError):
    """A model could not be upgraded or adopted (the message says why and what to do)."""


class Status(StrEnum):
    UP_TO_DATE = "up to date"
    UPGRADED = "upgraded"
    BEHIND = "behind"
    CONFLICTS = "conflicts"
    REFUSED = "refused (dirty)"
    NO_RECORD = "no record"
    ADOPTED = "adopted"
    ERROR = "error"


class Action(StrEnum):
    UPDATE = "update"  # the model had the old template text: it gets the new one
    MERGE = "merge"  # both sides changed it: merged without conflict
    CONFLICT = "conflict"  # both sides changed the same lines: markers written
    ADD = "add"  # new in the template
    REMOVE = "remove"  # removed from the template, unchanged in the model: deleted
    KEEP = "keep"  # removed from the template, changed in the model: kept
    SKIP = "skip"  # changed in the template, deleted in the model: not restored
    BINARY = "binary conflict"  # a binary file both sides changed: the model's copy is kept
    DIFFERS = "differs"  # adopt: the model's file differs from the bake (its own edits)
    MISSING = "missing"  # adopt: in the bake, not in the model

    @property
    def writes(self) -> bool:
        return self in (Action.UPDATE, Action.MERGE, Action.CONFLICT, Action.ADD)

    @property
    def conflicted(self) -> bool:
        return self in (Action.CONFLICT, Action.BINARY)


NOTES = {
    Action.REMOVE: "removed from the template; yours was unchanged: deleted",
    Action.KEEP: "removed from the template; yours has changes: kept (delete it if unused)",
    Action.SKIP: "changed in the template; deleted in the model: not restored",
    Action.BINARY: "binary, changed in the template and in the model: kept yours, merge by hand",
    Action.ADD: "new in the template",
}


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the model folder, with /
    action: Action
    conflicts: int = 0
    content: bytes | None = field(default=None, repr=False, compare=False)
    mode: int | None = field(default=None, repr=False, compare=False)

    @property
    def note(self) -> str:
        if self.action is Action.CONFLICT:
            many = "s" if self.conflicts != 1 else ""
            return f"{self.conflicts} conflict{many}: markers written" if self.conflicts else "conflict markers"
        return NOTES.get(self.action, "")


@dataclass
class Outcome:
    model: str
    status: Status
    files: list[FileChange] = field(default_factory=list)
    message: str = ""
    old_tree: str | None = None
    new_tree: str | None = None

    @property
    def conflicted(self) -> list[str]:
        return [f.path for f in self.files if f.action.conflicted]

    @property
    def label(self) -> str:
        if self.status is Status.CONFLICTS:
            count = len(self.conflicted)
            return f"conflicts ({count} file{'s' if count != 1 else ''})"
        if self.status is Status.BEHIND:
            return f"behind ({len(self.files)} file{'s' if len(self.files) != 1 else ''})"
        return str(self.status)

    @property
    def failed(self) -> bool:
        return self.status in (Status.CONFLICTS, Status.REFUSED, Status.ERROR, Status.BEHIND)


@dataclass
class Report:
    outcomes: list[Outcome]
    notices: list[str] = field(default_factory=list)
    target_tree: str | None = None
    named: bool = False  # models were named (a missing record is then an error, not a notice)

    @property
    def exit_code(self) -> int:
        failed = any(o.failed or (self.named and o.status is Status.NO_RECORD) for o in self.outcomes)
        return 1 if failed else 0


# --- the record --------------------------------------------------------------------------------


@dataclass
class Record:
    template_tree: str | None
    template_commit: str | None
    answers: dict[str, Any]
    template: str = TEMPLATE_NAME
    extra: dict[str, Any] = field(default_factory=dict)  # keys a newer writer added: kept as they are

    @classmethod
    def read(cls, path: Path) -> Record | None:
        """The record at ``path``; None when there is none; UpgradeError naming the file when it is malformed."""
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise UpgradeError(
                f"{path}: unreadable ({exc}); restore it from git (`git checkout -- {path.name}`)"
            ) from exc
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise UpgradeError(f"{path}: invalid JSON ({why}); restore it from git or adopt again") from None
        if not isinstance(data, dict):
            raise UpgradeError(f"{path}: expected a JSON object; restore it from git or adopt again")
        tree, commit, answers = data.get("template_tree"), data.get("template_commit"), data.get("answers")
        for key, value in (("template_tree", tree), ("template_commit", commit)):
            if value is not None and not (
                isinstance(value, str) and re.fullmatch(r"[0-9a-f]{40}([0-9a-f]{24})?", value)
            ):
                raise UpgradeError(f"{path}: {key} must be a git object id or null, not {value!r}")
        if not isinstance(answers, dict) or not all(isinstance(k, str) for k in answers):
            raise UpgradeError(f"{path}: `answers` must be an object of template answers")
        known = {"template", "template_tree", "template_commit", "answers"}
        return cls(
            template_tree=tree,
            template_commit=commit,
            answers=answers,
            template=str(data.get("template", TEMPLATE_NAME)),
            extra={k: v for k, v in data.items() if k not in known},
        )

    def text(self) -> str:
        data = {
            "template": self.template,
            "template_tree": self.template_tree,
            "template_commit": self.template_commit,
            "answers": self.answers,
            **self.extra,
        }
        return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# --- git ---------------------------------------------------------------------------------------


class Git:
    """The git plumbing upgrade needs, run from the monorepo root (which may sit below `.git`)."""

    def __init__(self, root: Path, trusted: str = "HEAD") -> None:
        self.root = root
        #: The history whose template versions upgrade will run: HEAD's, or (``--trusted REV``, CI on a pull
        #: request) the base branch's, so a template committed and reverted inside the pull request is not run.
        self.trusted = trusted
        self.trusted_name = trusted if trusted == "HEAD" else f"the trusted revision {trusted[:12]}"
        inside = self.run("rev-parse", "--is-inside-work-tree", check=False)
        if inside.returncode != 0 or inside.stdout.strip() != "true":
            raise UsageError(f"{root} is not in a git work tree: upgrade re-bakes old templates from git history")
        # Paths in `git status --porcelain` are relative to the top level, not to the monorepo.
        self.prefix = self.run("rev-parse", "--show-prefix").stdout.strip()
        # Commands on tree ids (archive, grep, ls-tree) take paths inside the tree: run them from the
        # top level, or git reads them relative to the monorepo folder.
        self.top = Path(self.run("rev-parse", "--show-toplevel").stdout.strip())
        self._trees: dict[str, bool] = {}
        self._history: frozenset[str] | None = None
        self._versions: dict[tuple[str, str | None], bool] = {}

    def run(
        self,
        *args: str | Path,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        top: bool = False,
        input: str | None = None,  # noqa: A002 - cmd.run's name
    ) -> cmd.Completed:
        cwd = self.top if top else self.root
        return cmd.run(["git", *args], what=f"git {args[0]}", cwd=cwd, env=env, check=check, input=input)

    def commit(self, rev: str) -> str:
        result = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        if result.returncode != 0:
            raise UsageError(f"{rev!r} is not a commit in this repository")
        return result.stdout.strip()

    def template_tree(self, commit: str) -> str:
        result = self.run("rev-parse", "--verify", "--quiet", f"{commit}:./{TEMPLATE_DIR}", check=False)
        if result.returncode != 0:
            raise UsageError(f"commit {commit[:12]} has no {TEMPLATE_DIR}/ folder")
        return result.stdout.strip()

    def has_tree(self, oid: str) -> bool:
        if oid not in self._trees:
            result = self.run("cat-file", "-t", oid, check=False)
            self._trees[oid] = result.returncode == 0 and result.stdout.strip() == "tree"
        return self._trees[oid]

    def template_in_history(self, tree: str, commit: str | None) -> bool:
        """Whether ``tree`` is what `cookiecutter-model/` was at some ancestor of the trusted revision (HEAD by
        default): at ``commit`` (the recorded one: no history walk), else at any commit of that history.

        Upgrades run a template version's code (its Jinja extensions), so a record may name only a version
        that was committed as the template: a tree committed anywhere else (and removed again) would
        otherwise show as nothing but a new id in `.template.json` (issue 20.5).
        """
        key = (tree, commit)
        if key not in self._versions:
            found = False
            if commit is not None:
                ancestor = self.run("merge-base", "--is-ancestor", commit, self.trusted, check=False).returncode == 0
                at = self.run("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}:./{TEMPLATE_DIR}", check=False)
                found = ancestor and at.returncode == 0 and at.stdout.strip() == tree
            self._versions[key] = found or tree in self.template_history()
        return self._versions[key]

    def template_history(self) -> frozenset[str]:
        """Every tree `cookiecutter-model/` had in HEAD's history, side branches of merges included
        (`--full-history`: the default simplification drops a branch whose change a merge discarded)."""
        if self._history is None:
            commits = self.run("rev-list", "--full-history", self.trusted, "--", TEMPLATE_DIR).stdout.split()
            path = f"{self.prefix}{TEMPLATE_DIR}"  # object names in a batch are relative to the top level
            request = "".join(f"{commit}:{path}\n" for commit in commits)
            out = self.run("cat-file", "--batch-check=%(objecttype) %(objectname)", input=request, top=True).stdout
            found = (line.split(" ", 1) for line in out.splitlines())  # "<name> missing" where it was deleted
            self._history = frozenset(oid for kind, oid in found if kind == "tree")
        return self._history

    def shallow(self) -> bool:
        return self.run("rev-parse", "--is-shallow-repository").stdout.strip() == "true"

    def dirty_models(self) -> dict[str, list[str]]:
        """Uncommitted changes (untracked files included) under models/, by model folder."""
        out = self.run("status", "--porcelain", "-z", "--untracked-files=all", "--", MODELS_DIR).stdout
        entries = out.split("\0")
        dirty: dict[str, list[str]] = {}
        skip_next = False
        head = f"{self.prefix}{MODELS_DIR}/"
        for entry in entries:
            if skip_next or not entry:
                skip_next = False
                continue
            status, path = entry[:2], entry[3:]
            skip_next = "R" in status or "C" in status  # the entry after a rename is its old path
            if path.startswith(head) and "/" in path[len(head) :]:
                dirty.setdefault(path[len(head) :].split("/", 1)[0], []).append(f"{status} {path}")
        return dirty

    def files_with_markers(self) -> dict[str, list[str]]:
        """Files under models/ (tracked or not ignored) with a line that opens a conflict, by model folder."""
        result = self.run(
            "grep", "-l", "-I", "--untracked", "-E", MARKER_PATTERN, "--", MODELS_DIR, check=False
        )  # exit 1: none found
        found: dict[str, list[str]] = {}
        head = f"{MODELS_DIR}/"  # git grep prints paths relative to the current directory
        for line in result.stdout.splitlines():
            if line.startswith(head) and "/" in line[len(head) :]:
                model, rest = line[len(head) :].split("/", 1)
                found.setdefault(model, []).append(rest)
        return found

    def template_changed(self) -> bool:
        return bool(self.run("status", "--porcelain", "--", TEMPLATE_DIR).stdout.strip())


# --- baking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeInfo:
    oid: str
    files: dict[str, tuple[str, str]]  # path -> (mode, blob id)
    project: str  # the folder cookiecutter renders, e.g. "{{cookiecutter.model_slug}}"
    includes: bool  # some file includes/imports/extends another template


def _cookiecutter(module: str) -> Any:
    # cookiecutter ships no type information; it is used through this one untyped door.
    return importlib.import_module(f"cookiecutter.{module}")


@contextmanager
def template_imports(template_dir: Path) -> Iterator[None]:
    """Let the template's `_extensions` import from its folder, and forget them afterwards: two
    template versions may both have a `local_extensions` module, and each bake must get its own.

    The folder goes first on sys.path (imports find this version, not one in the current folder) and
    last (where cookiecutter puts it, and where a template's own code looks for its folder).
    """
    before = set(sys.modules)
    entry = str(template_dir)
    sys.path.insert(0, entry)
    sys.path.append(entry)
    try:
        yield
    finally:
        sys.path[:] = [p for p in sys.path if p != entry]  # a fresh temp folder: only ours
        for name in set(sys.modules) - before:
            origin = getattr(sys.modules[name], "__file__", None)
            if origin and Path(origin).resolve().is_relative_to(template_dir.resolve()):
                del sys.modules[name]


def _check_choice(key: str, answer: Any, options: list[str]) -> Any:
    if answer not in options:
        raise UpgradeError(
            f"recorded answer {key}={answer!r} is not one of the template's choices ({', '.join(options)})"
        )
    return answer


def render_context(template_dir: Path, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The context `cookiecutter --no-input` builds, with ``answers`` taken literally.

    Answers are data (issue 15.4): a recorded description with `{{` in it is the text the model got,
    so it is not rendered again. Questions the answers lack get the template's default, as in a
    `--no-input` bake. The user's ~/.cookiecutterrc is not read: it must not change an upgrade.
    """
    generate, prompt, utils = _cookiecutter("generate"), _cookiecutter("prompt"), _cookiecutter("utils")
    context: dict[str, Any] = generate.generate_context(context_file=str(template_dir / "cookiecutter.json"))
    raw: dict[str, Any] = context["cookiecutter"]
    raw.pop("__prompts__", None)
    env = utils.create_env_with_context(context)
    values: dict[str, Any] = OrderedDict()

    def render(value: Any) -> Any:
        return prompt.render_variable(env, value, values)

    # Same order and passes as cookiecutter's prompt_for_config(no_input=True): private keys
    # verbatim, `__` keys and plain values rendered in order, choices -> the first option, dicts last.
    for key, value in raw.items():
        if key.startswith("_") and not key.startswith("__"):
            values[key] = value
        elif key.startswith("__"):
            values[key] = render(value)
        elif key in answers:
            values[key] = _check_choice(key, answers[key], render(value)) if isinstance(value, list) else answers[key]
        elif isinstance(value, list):
            values[key] = render(value[0]) if value else ""
        elif not isinstance(value, dict):
            values[key] = render(value)
    for key, value in raw.items():
        if isinstance(value, dict) and not (key.startswith("_") and not key.startswith("__")) and key not in answers:
            values[key] = render(value)
    context["_cookiecutter"] = {
        k: ([answers[k], *[o for o in v if o != answers[k]]] if isinstance(v, list) else answers[k])
        if k in answers
        else v
        for k, v in raw.items()
        if not k.startswith("_")
    }
    values.update({"_template": TEMPLATE_NAME, "_output_dir": "", "_repo_dir": str(template_dir), "_checkout": None})
    context["cookiecutter"] = values
    return context


def _answers_key(answers: Mapping[str, Any]) -> str:
    return json.dumps(answers, sort_keys=True, ensure_ascii=False)


class Baker:
    """Extracts template trees from git and bakes them, each (tree, answers, file set) once per run."""

    def __init__(self, git: Git, workdir: Path) -> None:
        self.git = git
        self.workdir = workdir
        self._trees: dict[str, TreeInfo] = {}
        self._extracted: dict[tuple[str, frozenset[str] | None], Path] = {}
        self._contexts: dict[tuple[tuple[tuple[str, tuple[str, str]], ...], str], dict[str, Any]] = {}
        self._references: dict[str, dict[str, frozenset[str] | None]] = {}
        self._extension_reads: dict[str, bool] = {}
        self._compiled: Any = None
        self._bakes: dict[tuple[str, str, frozenset[str] | None], Path] = {}
        self._count = 0

    def _new_dir(self, kind: str) -> Path:
        self._count += 1
        path = self.workdir / f"{kind}-{self._count}"
        path.mkdir(parents=True)
        return path

    def tree(self, oid: str) -> TreeInfo:
        if oid not in self._trees:
            out = self.git.run("ls-tree", "-r", "-z", "--full-tree", oid, top=True).stdout
            files: dict[str, tuple[str, str]] = {}
            for entry in filter(None, out.split("\0")):
                meta, path = entry.split("\t", 1)
                mode, _kind, blob = meta.split(" ")
                files[path] = (mode, blob)
            projects = sorted({p.split("/", 1)[0] for p in files if "/" in p and "cookiecutter" in p.split("/", 1)[0]})
            projects = [p for p in projects if "{{" in p and "}}" in p]
            if len(projects) != 1:
                raise UpgradeError(f"template tree {oid[:12]} has no single {{{{cookiecutter.*}}}} folder to bake")
            grep = self.git.run(
                "grep", "-l", "-I", "-E", INCLUDE_PATTERN, oid, "--", f":(literal){projects[0]}", check=False, top=True
            )
            self._trees[oid] = TreeInfo(oid, files, projects[0], includes=bool(grep.stdout.strip()))
        return self._trees[oid]

    def extract(self, oid: str, project_files: frozenset[str] | None) -> Path:
        """The template at ``oid`` in a temp folder: all of it, or its support files plus ``project_files``."""
        key = (oid, project_files)
        if key not in self._extracted:
            info = self.tree(oid)
            target = self._new_dir("template")
            archive = target.parent / f"{target.name}.tar"
            paths: list[str] = []
            if project_files is not None:
                # Hooks are off, but a template's Jinja extension may load code from hooks/ (answer checks).
                support = [p for p in info.files if not p.startswith((f"{info.project}/", "tests/"))]
                paths = support + sorted(p for p in project_files if p in info.files)
            if project_files is None or paths:
                env = cmd.clean_env({"GIT_LITERAL_PATHSPECS": "1"})
                self.git.run("archive", "--format=tar", "-o", archive, oid, "--", *paths, env=env, top=True)
                with tarfile.open(archive) as tar:
                    tar.extractall(target, filter="data")
                archive.unlink()
            (target / info.project).mkdir(exist_ok=True)  # cookiecutter looks for it even when it is empty
            self._extracted[key] = target
        return self._extracted[key]

    def context(self, oid: str, answers: Mapping[str, Any]) -> dict[str, Any]:
        """The rendered context of the template at ``oid`` for ``answers`` (cookiecutter.json only).

        Two trees with the same files outside the baked folder (cookiecutter.json, extensions) give the
        same context, so an upgrade that changed only model files renders it once per model, not twice.
        """
        info = self.tree(oid)
        support = tuple(sorted((p, blob) for p, blob in info.files.items() if not p.startswith(f"{info.project}/")))
        key = (support, _answers_key(answers))
        if key not in self._contexts:
            template_dir = self.extract(oid, frozenset())
            try:
                with template_imports(template_dir):
                    self._contexts[key] = render_context(template_dir, answers)
            except UpgradeError:
                raise
            except Exception as exc:  # the template's own code (an answer check, an extension) refused
                raise UpgradeError(f"template {oid[:12]} refused the recorded answers: {exc}") from exc
        return self._contexts[key]

    def bake(self, oid: str, answers: Mapping[str, Any], project_files: frozenset[str] | None) -> Path:
        """The baked model folder (all files, or only those rendered from ``project_files``)."""
        key = (oid, _answers_key(answers), project_files)
        if key not in self._bakes:
            template_dir = self.extract(oid, project_files)
            context = json.loads(json.dumps(self.context(oid, answers)))  # cookiecutter may mutate it
            context["cookiecutter"]["_repo_dir"] = str(template_dir)
            if all(used is not None for used in self.references(oid).values()):
                # Compile each template file once per run, not once per model: Jinja compilation is most
                # of a bake's time. cookiecutter passes `_jinja2_env_vars` to its Jinja environment; the
                # cache object is only safe where no file renders the whole `cookiecutter` object.
                self._compiled = self._compiled or _memory_bytecode_cache()
                env_vars = context["cookiecutter"].get("_jinja2_env_vars") or {}
                context["cookiecutter"]["_jinja2_env_vars"] = {**env_vars, "bytecode_cache": self._compiled}
            output = self._new_dir("bake")
            generate = _cookiecutter("generate")
            try:
                with template_imports(template_dir):
                    project = generate.generate_files(
                        repo_dir=str(template_dir), context=context, output_dir=str(output), accept_hooks=False
                    )
            except Exception as exc:  # cookiecutter raises many kinds (Jinja, undefined variables, OS)
                raise UpgradeError(f"baking template {oid[:12]} with the recorded answers failed: {exc}") from exc
            self._bakes[key] = Path(project)
        return self._bakes[key]

    def extensions_read_answers(self, oid: str) -> bool:
        """Whether the template's own Jinja extensions may read answers they are not given: a filter,
        test or global that receives the whole render context, or a custom tag."""
        if oid not in self._extension_reads:
            template_dir = self.extract(oid, frozenset())
            generate, utils = _cookiecutter("generate"), _cookiecutter("utils")
            base = utils.create_env_with_context({"cookiecutter": {}})
            try:
                with template_imports(template_dir):
                    raw = generate.generate_context(context_file=str(template_dir / "cookiecutter.json"))
                    env = utils.create_env_with_context(raw)
            except Exception as exc:  # the template's extension failed to load
                raise UpgradeError(f"template {oid[:12]}: its Jinja extensions do not load: {exc}") from exc
            added = [
                function
                for mine, theirs in ((env.filters, base.filters), (env.tests, base.tests), (env.globals, base.globals))
                for name, function in mine.items()
                if theirs.get(name) is not function
            ]
            tags = any(ext.tags for name, ext in env.extensions.items() if name not in base.extensions)
            context = any(getattr(getattr(f, "jinja_pass_arg", None), "name", None) == "context" for f in added)
            self._extension_reads[oid] = tags or context
        return self._extension_reads[oid]

    def references(self, oid: str) -> dict[str, frozenset[str] | None]:
        """For each file of the baked folder at ``oid``: the answers its path and text read, None for any."""
        if oid not in self._references:
            info = self.tree(oid)
            template_dir = self.extract(oid, None)
            env = _cookiecutter("utils").create_env_with_context({"cookiecutter": {}})
            found: dict[str, frozenset[str] | None] = {}
            for path in info.files:
                if not path.startswith(f"{info.project}/"):
                    continue
                data = (template_dir / path).read_bytes()
                sources = [path]
                if not _binary(data):  # cookiecutter copies binary files without rendering them
                    sources.append(data.decode("utf-8", "replace"))
                keys: set[str] | None = set()
                for source in sources:
                    used = _answers_read(env, source)
                    keys = None if used is None or keys is None else keys | used
                found[path] = None if keys is None else frozenset(keys)
            self._references[oid] = found
        return self._references[oid]


def _memory_bytecode_cache() -> Any:
    """A Jinja bytecode cache in memory (keyed by template name and file, checked against the source)."""
    from jinja2 import BytecodeCache  # jinja2 comes with cookiecutter; imported only when baking
    from jinja2.bccache import Bucket

    class MemoryBytecodeCache(BytecodeCache):
        def __init__(self) -> None:
            self.store: dict[str, bytes] = {}

        def load_bytecode(self, bucket: Bucket) -> None:
            if bucket.key in self.store:
                bucket.bytecode_from_string(self.store[bucket.key])

        def dump_bytecode(self, bucket: Bucket) -> None:
            self.store[bucket.key] = bucket.bytecode_to_string()

    return MemoryBytecodeCache()


_MAPPING_ATTRIBUTES = frozenset(dir(OrderedDict))


def _answers_read(env: Any, source: str) -> frozenset[str] | None:
    """The `cookiecutter.<key>` names a Jinja source reads; None when it may read any (it passes the
    whole `cookiecutter` or `_cookiecutter` object somewhere, or does not parse)."""
    from jinja2 import TemplateSyntaxError, nodes

    try:
        tree = env.parse(source)
    except TemplateSyntaxError:
        return None
    keys: set[str] = set()
    consumed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node
        if not (isinstance(target, nodes.Name) and target.name == "cookiecutter"):
            continue
        if isinstance(node, nodes.Getattr):
            if node.attr in _MAPPING_ATTRIBUTES:  # cookiecutter.items(), .get(name): any answer
                return None
            keys.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            keys.add(node.arg.value)
        else:
            return None
        consumed.add(id(target))
    for name in tree.find_all(nodes.Name):
        if name.name in ("cookiecutter", "_cookiecutter") and id(name) not in consumed:
            return None
    return frozenset(keys)


# --- planning and applying ---------------------------------------------------------------------


def _inert(path: str, extensions: bool) -> bool:
    """Whether a template file outside the baked folder leaves every bake as it is. cookiecutter reads
    cookiecutter.json, Jinja files under templates/ (its loader's second folder) and the modules
    `_extensions` names; other files (a README, a licence) never reach a model."""
    if path.startswith(INERT_PREFIXES):
        return True
    return (
        not extensions
        and path != "cookiecutter.json"
        and not path.startswith("templates/")
        and not path.endswith(".py")
    )


def _walk(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _read(path: Path | None) -> bytes | None:
    return path.read_bytes() if path is not None and path.is_file() else None


def _binary(*blobs: bytes | None) -> bool:
    return any(b is not None and b"\0" in b[:BINARY_SNIFF] for b in blobs)


class Upgrader:
    def __init__(self, repo: Repo, git: Git, workdir: Path) -> None:
        self.repo = repo
        self.git = git
        self.workdir = workdir
        self.baker = Baker(git, workdir)
        self._merges = 0

    def project_files(self, old: str, new: str, answers: Mapping[str, Any]) -> frozenset[str] | None:
        """The template files worth baking for an old -> new upgrade, or None for every file.

        A file renders the same in both bakes when its template text is the same in both trees and
        every answer it reads renders the same from both cookiecutter.json files (no includes, no
        Jinja extension that reads the render context): the merge has nothing to do for it.
        """
        a, b = self.baker.tree(old), self.baker.tree(new)
        if a.project != b.project or a.includes or b.includes:
            return None
        changed = {p for p in a.files.keys() | b.files.keys() if a.files.get(p) != b.files.get(p)}
        inside = frozenset(p for p in changed if p.startswith(f"{a.project}/"))
        outside = changed - inside
        if not outside:
            return inside
        before, after = self.baker.context(old, answers), self.baker.context(new, answers)
        # An extension module may read any file and any answer.
        extensions = "_extensions" in before["cookiecutter"] or "_extensions" in after["cookiecutter"]
        if any(not _inert(p, extensions) for p in outside - {"cookiecutter.json"}):
            return None
        if "cookiecutter.json" not in outside:
            return inside
        if extensions and (self.baker.extensions_read_answers(old) or self.baker.extensions_read_answers(new)):
            return None
        missing = object()
        keys = {
            k
            for k in before["cookiecutter"].keys() | after["cookiecutter"].keys()
            if k not in RUN_KEYS and before["cookiecutter"].get(k, missing) != after["cookiecutter"].get(k, missing)
        }
        if before.get("_cookiecutter") != after.get("_cookiecutter"):
            keys.add("_cookiecutter")  # only files that read the whole object (None below) see it
        if not keys:
            return inside
        reads = self.baker.references(old)
        stale = {p for p, used in reads.items() if p not in changed and (used is None or used & keys)}
        return inside | stale

    def plan(self, slug: str, record: Record, target: str) -> list[FileChange]:
        assert record.template_tree is not None
        old_tree, answers = record.template_tree, record.answers
        files = self.project_files(old_tree, target, answers)
        if files is not None and not files:
            return []
        old = _walk(self.baker.bake(old_tree, answers, files))
        new = _walk(self.baker.bake(target, answers, files))
        model_dir = self.repo.model_dir(slug)
        changes: list[FileChange] = []
        for rel in sorted(old.keys() | new.keys()):
            if rel == RECORD_FILE:
                continue
            change = self._file(slug, rel, old.get(rel), new.get(rel), model_dir / rel, old_tree, target)
            if change is not None:
                changes.append(change)
        return changes

    def _file(
        self, slug: str, rel: str, base_path: Path | None, other_path: Path | None, path: Path, old: str, new: str
    ) -> FileChange | None:
        base, other = _read(base_path), _read(other_path)
        if base == other:
            return None
        current = _read(path)
        if current == other:
            return None  # the model already has the template's new text
        if other is None:
            if current is None:
                return None
            return FileChange(rel, Action.REMOVE if current == base else Action.KEEP)
        if current is None:
            if base is None:
                assert other_path is not None
                return FileChange(rel, Action.ADD, content=other, mode=other_path.stat().st_mode & 0o7777)
            return FileChange(rel, Action.SKIP)
        mode = path.stat().st_mode & 0o7777
        if current == base:
            return FileChange(rel, Action.UPDATE, content=other, mode=mode)
        if _binary(base, other, current):
            return FileChange(rel, Action.BINARY, conflicts=1)
        # A file the template added that the model already has merges against an empty base.
        merged, conflicts = self.merge(current, base or b"", other, f"{MODELS_DIR}/{slug}/{rel}", old, new)
        return FileChange(rel, Action.CONFLICT if conflicts else Action.MERGE, conflicts, merged, mode)

    def merge(self, current: bytes, base: bytes, other: bytes, label: str, old: str, new: str) -> tuple[bytes, int]:
        """`git merge-file --diff3`: the merged text and its number of conflicts (markers included)."""
        self._merges += 1
        folder = self.workdir / "merge"
        folder.mkdir(exist_ok=True)
        paths = [folder / name for name in ("current", "base", "other")]
        for path, data in zip(paths, (current, base, other), strict=True):
            path.write_bytes(data)
        result = cmd.run(
            ["git", "merge-file", "--diff3", "-L", f"{label} (yours)", "-L", f"template {old[:7]}"]
            + ["-L", f"template {new[:7]}", *paths],
            what="git merge-file",
            cwd=folder,
            check=False,
        )
        if not 0 <= result.returncode <= 127:  # git merge-file exits with the conflict count, 255 on error
            raise UpgradeError(f"git merge-file failed on {label}: {cmd.tail_of(result.output)}")
        return paths[0].read_bytes(), result.returncode

    def effective_answers(self, oid: str, answers: Mapping[str, Any]) -> dict[str, Any]:
        """``answers`` plus the default of every question they lack, as the bake at ``oid`` used them."""
        context = self.baker.context(oid, answers)
        values = context["cookiecutter"]
        return {**answers, **{k: values[k] for k in context["_cookiecutter"] if k in values}}

    def model(
        self, slug: str, target: str, head: str, *, check: bool, force: bool, dirty: list[str], markers: list[str]
    ) -> Outcome:
        model_dir = self.repo.model_dir(slug)
        record = Record.read(model_dir / RECORD_FILE)
        if record is None:
            hint = f"adopt it: modelctl upgrade --adopt --from REV {slug}"
            return Outcome(slug, Status.NO_RECORD, message=f"no {RECORD_FILE}; {hint}")
        # The template's hook records the folder's path in its repository (`platform/cookiecutter-model`
        # when the monorepo sits below `.git`).
        if Path(record.template).name != TEMPLATE_NAME:
            raise UpgradeError(
                f"{RECORD_FILE} names template {record.template!r}; this repository's is {TEMPLATE_NAME!r}"
            )
        if record.answers.get("model_slug", slug) != slug:
            raise UpgradeError(
                f"{RECORD_FILE} records model_slug {record.answers['model_slug']!r} for folder {slug!r}; fix the record"
            )
        record = _with_config_answers(record, model_dir)
        old = record.template_tree
        if old is None:
            raise UpgradeError(
                f"{RECORD_FILE} records no template_tree (baked from a template outside git?); "
                f"adopt it again: modelctl upgrade --adopt --force --from REV {slug}"
            )
        if markers:
            changes = [FileChange(path, Action.CONFLICT) for path in markers]
            message = "unresolved conflict markers: resolve them and commit, then upgrade again"
            return Outcome(slug, Status.CONFLICTS, changes, message, old, target)
        if old == target:
            return Outcome(slug, Status.UP_TO_DATE, old_tree=old, new_tree=target)
        if not self.git.has_tree(old):
            raise UpgradeError(
                f"template tree {old[:12]} is not in this repository: a shallow clone (`git fetch --unshallow`; "
                "in CI check out with fetch-depth: 0), or the model was baked from uncommitted template changes "
                f"(adopt it again: modelctl upgrade --adopt --force --from REV {slug})"
            )
        if not self.git.template_in_history(old, record.template_commit):
            shallow = " (or beyond this shallow clone's history: `git fetch --unshallow`)" if self.git.shallow() else ""
            raise UpgradeError(
                f"{MODELS_DIR}/{slug}/{RECORD_FILE}: template_tree {old} was never {TEMPLATE_DIR}/ in "
                f"{self.git.trusted_name}'s history{shallow}, so its code is not run; restore the record from git, "
                "or adopt the model again: "
                f"modelctl upgrade --adopt --force --from REV {slug}"
            )
        if dirty and not force and not check:
            many = "s" if len(dirty) != 1 else ""
            message = (
                f"{len(dirty)} uncommitted change{many} under {MODELS_DIR}/{slug}: commit or stash them, or --force"
            )
            return Outcome(slug, Status.REFUSED, message=message, old_tree=old, new_tree=target)
        changes = self.plan(slug, record, target)
        if not changes:
            message = "the template changed, but nothing this model has"
            return Outcome(slug, Status.UP_TO_DATE, message=message, old_tree=old, new_tree=target)
        if check:
            _inside_model(model_dir, _written(changes, None))  # what the upgrade would refuse, --check reports
            return Outcome(slug, Status.BEHIND, changes, old_tree=old, new_tree=target)
        answers = self.effective_answers(target, record.answers)
        updated = Record(target, head, answers, record.template, record.extra)
        write_atomically(model_dir, changes, updated)
        status = Status.CONFLICTS if any(c.action.conflicted for c in changes) else Status.UPGRADED
        message = "resolve the conflict markers, then commit" if status is Status.CONFLICTS else ""
        return Outcome(slug, status, changes, message, old, target)


def _written(changes: Sequence[FileChange], record: Record | None) -> list[str]:
    """The model paths ``changes`` (and the record) write or delete."""
    paths = [c.path for c in changes if c.action.writes or c.action is Action.REMOVE]
    return [*paths, RECORD_FILE] if record is not None else paths


def _inside_model(model_dir: Path, paths: Sequence[str]) -> None:
    """UpgradeError unless every path resolves inside ``model_dir``: a symlinked `queries/` (or file) must
    not carry a write or a removal into another folder (issue 20.5)."""
    root = model_dir.resolve()
    for rel in paths:
        path = model_dir / rel
        try:
            real = path.resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python 3.11)
            raise UpgradeError(f"{path}: cannot resolve it ({exc}); nothing was changed") from exc
        if not real.is_relative_to(root):
            raise UpgradeError(
                f"{path} resolves to {real}, outside the model folder {root} (a symlink): upgrade writes only "
                "inside the model; replace the symlink with the files themselves and upgrade again; nothing was changed"
            )


def write_atomically(model_dir: Path, changes: Sequence[FileChange], record: Record | None) -> None:
    """Write every change or none: all new contents go to temp files beside their targets first,
    then each is renamed over its target (a rename is atomic), removals and the record last.
    Nothing is written when any of them resolves outside ``model_dir``."""
    _inside_model(model_dir, _written(changes, record))
    staged: list[tuple[Path, Path]] = []
    created: list[Path] = []
    suffix = f".modelctl-upgrade-{os.getpid()}"
    try:
        writes = [(model_dir / c.path, c.content, c.mode) for c in changes if c.action.writes and c.content is not None]
        if record is not None:
            writes.append((model_dir / RECORD_FILE, record.text().encode(), None))
        for target, content, mode in writes:
            assert content is not None
            for parent in reversed(target.relative_to(model_dir).parents):
                folder = model_dir / parent
                if not folder.exists():
                    folder.mkdir()
                    created.append(folder)
            temp = target.with_name(f".{target.name}{suffix}")
            temp.write_bytes(content)
            if mode is not None:
                temp.chmod(mode)
            elif target.exists():
                temp.chmod(target.stat().st_mode & 0o7777)
            staged.append((temp, target))
    except OSError as exc:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
        for folder in reversed(created):
            folder.rmdir()
        raise UpgradeError(f"could not write into {model_dir} ({exc}); nothing was changed") from exc
    record_stage = staged.pop() if record is not None else None
    for temp, target in staged:
        os.replace(temp, target)
    for change in changes:
        if change.action is Action.REMOVE:
            (model_dir / change.path).unlink(missing_ok=True)
    if record_stage is not None:  # last: an interrupted run is re-run from the old record
        os.replace(*record_stage)


@contextmanager
def _workdir() -> Iterator[Path]:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="modelctl-upgrade-") as tmp:
        yield Path(tmp)


def upgrade_models(
    repo: Repo, names: Sequence[str], *, check: bool = False, force: bool = False, trusted: str | None = None
) -> Report:
    """Upgrade ``names`` (every model when empty) to HEAD's template; ``check`` writes nothing. ``trusted``: only
    template versions of that revision's history are run (besides HEAD's own template)."""
    git = Git(repo.root)
    if trusted is not None:
        if trusted.startswith("-"):
            raise UsageError(f"--trusted {trusted!r}: expected a revision (a branch, tag or commit), not an option")
        git.trusted = git.commit(trusted)
        git.trusted_name = f"the trusted revision {trusted} ({git.trusted[:12]})"
    selected = repo.resolve(list(names))
    head = git.commit("HEAD")
    target = git.template_tree(head)
    notices = []
    if git.template_changed():
        notices.append(
            f"{TEMPLATE_DIR}/ has uncommitted changes: upgrading to HEAD's template ({target[:12]}); "
            "commit them first to include them"
        )
    dirty = git.dirty_models()
    markers = git.files_with_markers()
    outcomes: list[Outcome] = []
    with _workdir() as workdir:
        upgrader = Upgrader(repo, git, workdir)
        for slug in selected:
            try:
                outcome = upgrader.model(
                    slug,
                    target,
                    head,
                    check=check,
                    force=force,
                    dirty=dirty.get(slug, []),
                    markers=markers.get(slug, []),
                )
            except ModelctlError as exc:  # one model's failure (a git error included) does not stop --all
                outcome = Outcome(slug, Status.ERROR, message=str(exc))
            outcomes.append(outcome)
    return Report(outcomes, notices, target, named=bool(names))


# --- adopting models baked before records existed ----------------------------------------------


def infer_answers(model_dir: Path) -> dict[str, Any]:
    """The answers a model was most likely baked with: its config.yaml and its README's title."""
    slug = model_dir.name
    path = model_dir / "config.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UpgradeError(f"{path}: cannot read the answers from it ({exc})") from exc
    try:
        # Not load_config: an older config may not validate any more, and the answers are all we need. Still read
        # as load_config reads, anchors and aliases refused (484 bytes of merge keys: 46 s, 820 MB; issue 20 item 12).
        data = read_yaml(text, str(path))
    except ConfigError as exc:
        raise UpgradeError(f"cannot read the answers from {exc.problems[0]}") from None
    if not isinstance(data, dict):
        raise UpgradeError(f"{path}: expected a mapping")
    if data.get("name") != slug:
        raise UpgradeError(f"{path}: name {data.get('name')!r} is not the folder name {slug!r}")
    title = ""
    readme = model_dir / "README.md"
    if readme.is_file():
        title = next(
            (ln[2:].strip() for ln in readme.read_text(encoding="utf-8").splitlines() if ln.startswith("# ")), ""
        )
    answers: dict[str, Any] = {"model_name": title or slug.replace("_", " ").title(), "model_slug": slug}
    for key in ("description", "owner", "framework", "task", "input"):
        if isinstance(data.get(key), str):
            answers[key] = data[key]
    return answers


def adopt_models(repo: Repo, names: Sequence[str], rev: str, *, force: bool = False) -> Report:
    """Write `.template.json` for models baked from the template at ``rev`` (every model without one when
    ``names`` is empty) and say how far each model is from a bake of it."""
    git = Git(repo.root)
    commit = git.commit(rev)
    # The record must name a template version upgrades accept (see Git.template_in_history).
    if git.run("merge-base", "--is-ancestor", commit, "HEAD", check=False).returncode != 0:
        raise UsageError(f"{rev!r} ({commit[:12]}) is not an ancestor of HEAD: adopt from a commit of this branch")
    tree = git.template_tree(commit)
    selected = repo.resolve(list(names))
    if not names:
        selected = [s for s in selected if not (repo.model_dir(s) / RECORD_FILE).exists()]
    outcomes: list[Outcome] = []
    with _workdir() as workdir:
        upgrader = Upgrader(repo, git, workdir)
        for slug in selected:
            try:
                outcomes.append(_adopt(upgrader, slug, tree, commit, rev, force))
            except ModelctlError as exc:
                outcomes.append(Outcome(slug, Status.ERROR, message=str(exc)))
    return Report(outcomes, [], tree, named=bool(names))


def _adopt(upgrader: Upgrader, slug: str, tree: str, commit: str, rev: str, force: bool) -> Outcome:
    model_dir = upgrader.repo.model_dir(slug)
    if (model_dir / RECORD_FILE).exists() and not force:
        raise UpgradeError(f"{MODELS_DIR}/{slug}/{RECORD_FILE} exists already (--force replaces it)")
    answers = upgrader.effective_answers(tree, infer_answers(model_dir))
    baked = _walk(upgrader.baker.bake(tree, answers, None))
    changes = []
    for rel, path in baked.items():
        current = _read(model_dir / rel)
        if current is None:
            changes.append(FileChange(rel, Action.MISSING))
        elif current != path.read_bytes():
            changes.append(FileChange(rel, Action.DIFFERS))
    template = f"{upgrader.git.prefix}{TEMPLATE_DIR}"  # as the template's hook writes it
    write_atomically(model_dir, [], Record(tree, commit, answers, template))
    same = len(baked) - len(changes)
    message = (
        f"{same} of {len(baked)} template files are as a bake of {rev} makes them; "
        "upgrades keep the differences as the model's own edits"
    )
    if changes:
        message += " (if most differ, REV is not the version it was baked from: see `git log -- cookiecutter-model`)"
    return Outcome(slug, Status.ADOPTED, changes, message, tree, tree)


# Answers a model's config.yaml also holds: when a record lacks one (an older template did not ask, or the record
# was edited), the model's own value is the answer, never the template's default (a regression model must not be
# merged against a classifier's bake).
_CONFIG_ANSWERS = ("description", "owner", "framework", "task", "input")


def _with_config_answers(record: Record, model_dir: Path) -> Record:
    missing = [key for key in _CONFIG_ANSWERS if key not in record.answers]
    if not missing:
        return record
    try:
        config = load_config(model_dir / "config.yaml")
    except ConfigError as exc:
        raise UpgradeError(
            f"{RECORD_FILE} lacks {', '.join(missing)} and {exc.problems[0]}: fix config.yaml or the record"
        ) from None
    filled = {**record.answers, **{key: getattr(config, key) for key in missing}}
    return dataclasses.replace(record, answers=filled)
