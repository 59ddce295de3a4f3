"""Production-readiness checks for a model folder (`modelctl doctor`).

Each check is a small class: its name is the id, its docstring the title, `check()`'s docstring
the failure message; `fix` says what to do. `check()` returns True when the model passes, or a
string with the specific reason it does not.
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from modelctl import cmd, requirements
from modelkit import ConfigError, load_config, read_yaml


@dataclass(frozen=True)
class ModelFolder:
    """A model folder as found on disk (doctor checks folders whose config may not even load)."""

    name: str
    folder: Path
    repo_root: Path

    def text(self, relative: str) -> str | None:
        path = self.folder / relative
        try:
            return path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None

    def raw_config(self) -> dict[str, Any] | str:
        """config.yaml as plain data, or why it cannot be read.

        Read as `load_config` reads it, anchors and aliases refused first: with `yaml.safe_load` (PyYAML 6.0.3),
        484 bytes of `<<: *a` merge keys took 46 s and 820 MB per read (issue 20 item 12).
        """
        text = self.text("config.yaml")
        if text is None:
            return "config.yaml is missing or unreadable"
        try:
            data = read_yaml(text, "config.yaml")
        except ConfigError as exc:
            return str(exc.problems[0])
        return data if isinstance(data, dict) else f"config.yaml: got {_yaml_type(data)}; expected a mapping of keys"

    def loadtest(self) -> dict[str, Any] | str:
        """The config's `loadtest` section ({} when absent), or why it cannot be used."""
        config = self.raw_config()
        if isinstance(config, str):
            return config
        section = config.get("loadtest")
        if section is None:
            return {}
        return (
            section
            if isinstance(section, dict)
            else f"config.yaml: loadtest: got {_yaml_type(section)}; expected a mapping"
        )


def _yaml_type(value: object) -> str:
    """The YAML type of ``value`` with its article, as messages name it: "a list", "an integer"."""
    kind = {dict: "mapping", list: "list", str: "string", int: "integer", float: "number", bool: "boolean"}
    if value is None:
        return "nothing"
    name = kind.get(type(value), type(value).__name__)
    return f"an {name}" if name[0] in "aeiou" else f"a {name}"


class Check:
    severity: ClassVar[str] = "error"
    fix: ClassVar[str] = ""

    def check(self, model: ModelFolder) -> bool | str:
        raise NotImplementedError


class MC001(Check):
    """config.yaml is valid"""

    fix = "run `modelctl validate MODEL` and fix what it names"

    def check(self, model: ModelFolder) -> bool | str:
        """config.yaml does not validate"""
        try:
            load_config(model.folder / "config.yaml", check_folder_name=True)
        except ConfigError as exc:
            return str(exc.problems[0])
        return True


class MC002(Check):
    """load-test thresholds are set explicitly"""

    fix = "set loadtest.max_p90_ms and loadtest.max_error_rate in config.yaml to what this model's users need"

    def check(self, model: ModelFolder) -> bool | str:
        """the load-test gate relies on defaults"""
        loadtest = model.loadtest()
        if isinstance(loadtest, str):
            return loadtest
        missing = [key for key in ("max_p90_ms", "max_error_rate") if key not in loadtest]
        return f"missing {', '.join('loadtest.' + m for m in missing)}" if missing else True


_ASSERT = re.compile(r"^\s*assert\s+(?!True\b)", re.MULTILINE)


def _tests(model: ModelFolder, pattern: str, must_mention: str) -> bool | str:
    files = sorted((model.folder / "tests").glob(pattern))
    if not files:
        return f"no tests/{pattern}"
    text = "\n".join(f.read_text(encoding="utf-8") for f in files)
    if must_mention not in text:
        return f"tests/{pattern} never uses {must_mention!r}"
    if len(_ASSERT.findall(text)) < 3:
        return f"tests/{pattern} has fewer than 3 real asserts"
    return True


class MC003(Check):
    """the model meets the platform's service contract"""

    fix = (
        'keep `pytest_plugins = ["modelkit.testing"]` in tests/conftest.py (the contract every model meets) and '
        "tests/test_service.py from the template: it posts to /predict through the ASGI app"
    )

    def check(self, model: ModelFolder) -> bool | str:
        """the service contract is not tested"""
        conftest = model.text("tests/conftest.py") or ""
        if "modelkit.testing" not in conftest:
            return "tests/conftest.py does not enable the modelkit.testing contract"
        return _tests(model, "test_service*.py", "/predict")


class MC004(Check):
    """a training test checks the model's quality"""

    fix = "keep tests/test_train.py from the template: it asserts a minimum metric"

    def check(self, model: ModelFolder) -> bool | str:
        """the training test is missing or trivial"""
        return _tests(model, "test_train*.py", "train")


class MC005(Check):
    """notebooks are stripped of outputs"""

    fix = "run `make hooks` (nbstripout strips notebooks on commit) or `pre-commit run nbstripout --all-files`"

    def check(self, model: ModelFolder) -> bool | str:
        """a notebook has outputs or execution counts"""
        for path in sorted(model.folder.rglob("*.ipynb")):
            try:
                cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
            except ValueError:
                return f"{path.relative_to(model.folder)} is not valid JSON"
            if any(c.get("outputs") or c.get("execution_count") is not None for c in cells):
                return f"{path.relative_to(model.folder)} has outputs"
        return True


def _requirements(model: ModelFolder) -> list[requirements.Line] | str:
    try:
        return requirements.read(model.folder / "requirements.txt")
    except FileNotFoundError:
        return "requirements.txt is missing"
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return f"requirements.txt cannot be read: {exc}"


class MC006(Check):
    """requirements are pinned"""

    fix = "pin every requirement with == (the bento is built offline from exactly these)"

    def check(self, model: ModelFolder) -> bool | str:
        """requirements.txt has unpinned packages"""
        lines = _requirements(model)
        if isinstance(lines, str):
            return lines
        loose = [f"{line.text} ({line.source.name})" for line in lines if not line.pinned]
        return f"not pinned: {', '.join(loose)}" if loose else True


class MC007(Check):
    """the shared/ library is a declared dependency"""

    fix = "keep `-e ../../shared` in requirements.txt: it is how shared/ changes rebuild this model"

    def check(self, model: ModelFolder) -> bool | str:
        """requirements.txt does not declare shared/"""
        lines = _requirements(model)
        if isinstance(lines, str):
            return lines
        return requirements.uses_shared(lines) or "no `-e ../../shared` line"


class MC008(Check):
    """the load-test payload exists and is a valid request"""

    fix = "keep sample_request.json (or loadtest.payload) as a valid body for POST /predict"

    def check(self, model: ModelFolder) -> bool | str:
        """the load-test payload is missing or invalid"""
        loadtest = model.loadtest()
        if isinstance(loadtest, str):
            return loadtest
        payload = loadtest.get("payload", "sample_request.json")
        if not isinstance(payload, str):
            return f"config.yaml: loadtest.payload: got {_yaml_type(payload)}; expected a file name"
        text = model.text(payload)
        if text is None:
            return f"{payload} is missing"
        try:
            body = json.loads(text)
        except ValueError as exc:
            return f"{payload} is not JSON: {exc}"
        if not isinstance(body, dict) or not body.get("instances"):
            return f"{payload} has no 'instances' rows"
        return True


_SECRETS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[0-9A-Za-z-]{10,}"),
    "Slack webhook": re.compile(r"hooks\.slack\.com/services/T[0-9A-Z]+/B[0-9A-Z]+/[0-9A-Za-z]+"),
    "GitHub token": re.compile(r"\bgh[pousr]_[0-9A-Za-z]{30,}"),
}


class MC009(Check):
    """no secrets in the model folder"""

    fix = "remove the secret, rotate it, and read it from an environment variable instead"

    def check(self, model: ModelFolder) -> bool | str:
        """a file looks like it contains a secret"""
        for path in sorted(p for p in model.folder.rglob("*") if p.is_file()):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            for kind, pattern in _SECRETS.items():
                if pattern.search(text):
                    return f"{path.relative_to(model.folder)} contains a {kind}"
        return True


class MC010(Check):
    """the model's files pass the repo's pre-commit hooks"""

    severity = "warning"
    fix = "run `pre-commit run --files models/MODEL/**` and commit what it fixes"

    def check(self, model: ModelFolder) -> bool | str:
        """pre-commit hooks fail on the model's files"""
        paths = [
            p
            for p in sorted(model.folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
        ]
        # Hooks fix files in place; doctor only reports, so every file is put back byte for byte
        # (uncommitted work included) whatever the hooks did.
        snapshot = {path: path.read_bytes() for path in paths}
        try:
            result = cmd.run(
                [
                    sys.executable,
                    "-m",
                    "pre_commit",
                    "run",
                    "--files",
                    *(str(p.relative_to(model.repo_root)) for p in paths),
                ],
                what="pre-commit",
                cwd=model.repo_root,
                check=False,
            )
        finally:
            for path, content in snapshot.items():
                if not path.exists() or path.read_bytes() != content:
                    path.write_bytes(content)
        if result.returncode == 0:
            return True
        failed = [line.split("..")[0].strip() for line in result.stdout.splitlines() if line.endswith("Failed")]
        return f"failing hooks: {', '.join(failed) or result.stdout.strip()[-200:]}"


_SHOWN = 5  # links named in the message; the rest are counted


def _relative(path: Path, model: ModelFolder) -> str:
    return str(path.relative_to(model.folder)) if path != model.folder else f"models/{model.name} itself"


class MC011(Check):
    """the model folder holds no symlinks"""

    fix = (
        "replace each link with the file it points to (or read the data from the data source): git stores only "
        "the path a link names, so CI and the bento build see whatever that path holds on their machine, or nothing"
    )

    def check(self, model: ModelFolder) -> bool | str:
        """the model folder contains symlinks"""
        # rglob lists a linked folder but never enters it: a link to `/` cannot make doctor walk the disk.
        links = [model.folder] if model.folder.is_symlink() else []
        links += [p for p in sorted(model.folder.rglob("*")) if p.is_symlink()]
        if not links:
            return True
        shown = [f"{_relative(link, model)} -> {os.readlink(link)}" for link in links[:_SHOWN]]
        more = f" and {len(links) - _SHOWN} more" if len(links) > _SHOWN else ""
        return ", ".join(shown) + more


class MC012(Check):
    """the model environment is locked with hashes (requirements.lock, current)"""

    fix = (
        "run `modelctl lock MODEL` and commit requirements.lock: the environment then installs exactly those files, "
        "each checked against its hash"
    )

    def check(self, model: ModelFolder) -> bool | str:
        """requirements.lock is missing or out of date"""
        from modelctl.lockfile import status

        try:
            state = status(model.folder)
        except (OSError, ValueError) as exc:
            return f"the requirements cannot be read ({exc})"
        return True if state.state == "current" else state.message


CHECKS: tuple[type[Check], ...] = (
    MC001, MC002, MC003, MC004, MC005, MC006, MC007, MC008, MC009, MC010, MC011, MC012
)  # fmt: skip


def check_range(checks: tuple[type[Check], ...] = CHECKS) -> str:
    """The ids of ``checks`` as help texts and summaries name them: "MC001-MC011" (never stale when one is added)."""
    first, last = checks[0].__name__, checks[-1].__name__
    return first if first == last else f"{first}-{last}"


@dataclass(frozen=True)
class Finding:
    id: str
    title: str
    passed: bool
    severity: str
    reason: str
    fix: str


def run_checks(model: ModelFolder, checks: tuple[type[Check], ...] = CHECKS) -> list[Finding]:
    findings = []
    for cls in checks:
        outcome = cls().check(model)
        passed = outcome is True
        reason = (
            "" if passed else f"{cls.check.__doc__}: {outcome}" if isinstance(outcome, str) else str(cls.check.__doc__)
        )
        findings.append(
            Finding(cls.__name__, str(cls.__doc__), passed, cls.severity, reason, "" if passed else cls.fix)
        )
    return findings


def errors_of(findings: list[Finding]) -> list[str]:
    """The failed error-severity findings, one line each (warnings are not errors)."""
    return [f"{f.id} {f.reason}" for f in findings if not f.passed and f.severity == "error"]
