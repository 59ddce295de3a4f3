"""Build: a bento of the model folder, offline (pinned requirements, `lock_packages: false`), shared/ as a wheel,
and the exact model tag pinned into it (a rollback restores the model as well as the code)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from modelctl import cmd, git, requirements
from modelctl.console import err
from modelctl.delivery.train import store_env
from modelctl.envs import runtime_script
from modelctl.errors import ModelctlError
from modelctl.model import Model
from modelctl.processenv import model_process_env
from modelctl.repo import SHARED_DIR

BUILD_DIR = "modelctl-build"  # not hidden: bentoml refuses files under dot-folders


class BuildError(ModelctlError):
    pass


@dataclass(frozen=True)
class Built:
    bento: str
    model_tag: str


def _uv() -> str:
    from uv import find_uv_bin  # the pre-commit hook env has no uv; only building needs it

    return str(find_uv_bin())


def build(model: Model, model_tag: str | None = None) -> Built:
    """A bento of ``model`` with ``model_tag`` (default: its newest trained version) pinned into it."""
    model.python()  # the environment first: its errors say more than a failed wheel build
    work = model.folder / BUILD_DIR
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        cmd.run(
            [_uv(), "build", "--wheel", "--out-dir", work, model.repo.root / SHARED_DIR],
            what="building the shared/ wheel",
        )
        wheels = sorted(work.glob("modelkit-*.whl"))
        if not wheels:
            raise BuildError(f"building the shared/ wheel produced no modelkit-*.whl in {work}")
        try:
            lines = requirements.read(model.folder / "requirements.txt")
        except (OSError, ValueError) as exc:
            raise BuildError(f"cannot read {model.relative('requirements.txt')}: {exc}") from exc
        bento_requirements = work / "requirements.txt"
        locked, hashed = lock(model, requirements.for_bento(lines), wheels[0], work)
        bento_requirements.write_text(locked, encoding="utf-8")
        spec = work / "spec.json"
        config = model.config
        spec.write_text(
            json.dumps(
                {
                    "name": config.name,
                    "model_tag": model_tag,
                    "labels": {
                        "git_commit": git.head(model.repo.root),
                        "owner": config.owner,
                        "framework": config.framework,
                        "task": config.task,
                        "dependency_hashes": "true" if hashed else "false",
                    },
                    # bentoml refuses absolute paths here: relative to the build context (the model folder)
                    "requirements_txt": str(bento_requirements.relative_to(model.folder)),
                    "wheels": [str(w.relative_to(model.folder)) for w in wheels],
                }
            ),
            encoding="utf-8",
        )
        what = f"bentoml build of {model.name}"
        result = model.run([runtime_script("build_bento.py"), spec], what=what, env=store_env(model), check=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data = runtime_result(result)
    if "error" in data:
        raise BuildError(str(data["error"]))
    if result.returncode != 0 or "bento" not in data:
        raise cmd.CommandError(what, result.argv, result.returncode, result.output)
    return Built(str(data["bento"]), str(data["model"]))


def runtime_result(result: cmd.Completed) -> dict[str, object]:
    """The JSON object a runtime script prints last ({} when it printed none)."""
    try:
        data = json.loads(result.last_json_line() or "{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def lock(model: Model, runtime: str, shared_wheel: Path, work: Path) -> tuple[str, bool]:
    """The bento's requirements: the full runtime dependency set at exactly the versions of the environment the
    gate runs the bento in, with hashes; (text, hashed).

    Resolved once, here, so that what ships is what was load-tested. Without the package index (offline) the
    hashes cannot be fetched: the exact versions are still pinned, and the bento's `dependency_hashes` label
    says `false`.
    """
    uv = _uv()
    # uv starts the model's interpreter (its site-packages run code at start-up): the allow-listed environment,
    # the installer's own settings, never a credential.
    env = model_process_env({k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_"))})
    frozen = cmd.run(
        [uv, "pip", "freeze", "--exclude-editable", "--python", model.python()],
        what="listing the model's environment",
        env=env,
    ).stdout
    constraints = work / "environment.txt"
    constraints.write_text(frozen, encoding="utf-8")
    inputs = work / "runtime.in"
    inputs.write_text(runtime + f"{shared_wheel}\n", encoding="utf-8")
    try:
        compiled = cmd.run(
            [uv, "pip", "compile", "--quiet", "--generate-hashes", "--no-header", "--no-annotate",
             "--python", model.python(), "-c", constraints, inputs],
            what="locking the bento's dependencies",
            timeout=300,
            env=env,
        ).stdout  # fmt: skip
    except cmd.CommandError as exc:
        err.print(f"warning: {str(exc).splitlines()[0]}; the bento pins exact versions without hashes", markup=False)
        return _pinned_closure(runtime, frozen), False
    # The shared/ wheel itself is packaged by bentoml beside the requirements; its dependencies stay here.
    kept = [block for block in _requirement_blocks(compiled) if "modelkit" not in block.split("==")[0]]
    return "".join(kept), True


def _requirement_blocks(text: str) -> list[str]:
    """Requirement entries of a compiled file, each with its continuation (hash) lines."""
    blocks: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.startswith((" ", "\t")) and blocks:
            blocks[-1] += line
        elif line.strip() and not line.lstrip().startswith("#"):
            blocks.append(line)
    return blocks


def _pinned_closure(runtime: str, frozen: str) -> str:
    """Offline fallback: the runtime requirements, then every package of the environment at its exact version."""
    return runtime + "".join(line + "\n" for line in frozen.splitlines() if "==" in line)
