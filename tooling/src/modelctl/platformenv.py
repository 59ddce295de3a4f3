"""The platform's own environments: where modelctl runs BentoML when credentials or the bento store are at stake
(`bentoml deploy`, `import`, `export`, `containerize`), and the load-test gate's Locust. Never a model's.

A model's environment holds whatever its requirements bring; any package there runs code when Python starts
(``.pth`` files, ``sitecustomize``), so it never runs with a deploy credential in reach, and never produces the
numbers the gate decides on. These environments hold only what a lock under ``locks/`` names (every package
pinned, with hashes; wheels only), installed with their own package cache and copied, not hard-linked, files
(model environments are hard-linked to uv's shared cache: a model writing into its own site-packages would
otherwise write into these too), and are run isolated (``python -I``). The gate's also gets a copy of
``shared/src/modelkit`` (pure Python), which its Locust user imports.

Each is built once per lock, interpreter (and modelkit's sources), under a file lock, in a temporary folder
renamed into place when complete: in ``MODELCTL_ENV_CACHE`` when set (tests, CI caches), else in the state
folder. On one machine, processes of the same user can still write anywhere that user can: the boundary against
a hostile model is the CI job that holds no secret (README, "Credentials never reach model code").
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from modelctl import cmd
from modelctl.envs import CACHE_VARIABLE, tree_digest
from modelctl.errors import ModelctlError
from modelctl.processenv import model_process_env

LOCKS = Path(__file__).parent / "locks"
LOCK = LOCKS / "bentoml.lock"
WRAPPER = Path(__file__).parent / "runtime" / "platform_bentoml.py"
BUILD_TIMEOUT_S = 900.0


class PlatformEnvError(ModelctlError):
    pass


@dataclass(frozen=True)
class Spec:
    """One platform environment: its name, its lock, and pure-Python packages copied in (name -> source)."""

    name: str
    lock: Path
    packages: tuple[tuple[str, Path], ...] = ()


BENTOML = Spec("bentoml", LOCK)


def locust(shared: Path) -> Spec:
    """The gate's Locust, with modelkit copied from ``shared`` (the monorepo's shared/ folder)."""
    return Spec("locust", LOCKS / "locust.lock", (("modelkit", shared / "src" / "modelkit"),))


def key(spec: Spec = BENTOML) -> str:
    """What the environment is built from: the lock, the interpreter, the packages copied in."""
    try:
        digest = hashlib.sha256(spec.lock.read_bytes())
        for name, source in spec.packages:
            digest.update(name.encode() + b"\0" + tree_digest(source).encode())
    except OSError as exc:
        raise PlatformEnvError(f"cannot read what the platform's {spec.name} environment is built from: {exc}") from exc
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def _cache_root(state_root: Path) -> Path:
    cache = os.environ.get(CACHE_VARIABLE, "").strip()
    return Path(cache) if cache else state_root / "envs"


def python(state_root: Path, spec: Spec = BENTOML) -> Path:
    """The interpreter of the platform environment ``spec`` (BentoML by default), built if missing."""
    root = _cache_root(state_root)
    name = f"platform-{spec.name}-{key(spec)}"
    folder = root / name
    interpreter = folder / "bin" / "python"
    if interpreter.is_file():
        return interpreter
    root.mkdir(parents=True, exist_ok=True)
    from filelock import FileLock  # imported here: the pre-commit hook's environment lacks it

    with FileLock(str(root / f".{name}.lock"), timeout=BUILD_TIMEOUT_S):
        if interpreter.is_file():  # another process built it while this one waited
            return interpreter
        _build(spec, folder)
    return interpreter


def _build(spec: Spec, folder: Path) -> None:
    from uv import find_uv_bin

    uv = find_uv_bin()
    partial = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    # The installer's own settings (index, proxies), never a credential; a cache of its own (see the module).
    settings = {k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_")) and k != "UV_CACHE_DIR"}
    installer = model_process_env({**settings, "UV_CACHE_DIR": str(folder.parent / ".platform-uv-cache")})
    what = f"the platform's {spec.name} environment"
    try:
        if folder.exists():  # a folder without an interpreter: left by an older modelctl or by hand
            shutil.rmtree(folder)
        cmd.run(
            [uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, partial],
            what=f"creating {what}",
            env=installer,
            timeout=BUILD_TIMEOUT_S,
        )
        cmd.run(
            [uv, "pip", "install", "--quiet", "--require-hashes", "--no-build", "--link-mode", "copy"]
            + ["--python", str(partial / "bin" / "python"), "-r", str(spec.lock)],
            what=f"installing {what} from {spec.lock.name} (hashes required)",
            env=installer,
            timeout=BUILD_TIMEOUT_S,
        )
        if spec.packages:
            site = cmd.run(
                [partial / "bin" / "python", "-I", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                what=f"locating {what}'s site-packages",
                env=installer,
            ).stdout.strip()
            for name, source in spec.packages:
                shutil.copytree(source, Path(site) / name, ignore=shutil.ignore_patterns("__pycache__"))
        partial.rename(folder)
    except (cmd.CommandError, OSError) as exc:
        raise PlatformEnvError(f"cannot build {what} in {folder}: {exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def environment(bentoml_home: Path, settings: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a platform BentoML call starts with: the allow-listed base, the store, and ``settings``
    that are no secret (Docker's address and options for containerize). Credentials go through
    :func:`secrets_input`, never here."""
    return model_process_env({"BENTOML_HOME": str(bentoml_home), **(settings or {})})


def secrets_input(credentials: Mapping[str, str] | None = None) -> str:
    """The stdin line of :func:`command`: the variables only that call gets (BentoCloud's token for a deploy)."""
    return json.dumps(dict(credentials or {})) + "\n"


def command(interpreter: Path, *args: str | Path) -> list[str | Path]:
    """BentoML's CLI with the platform's interpreter, isolated (``-I``: no PYTHON* variables, no user site, not the
    current folder) and through ``runtime/platform_bentoml.py``: sealed first, credentials read from stdin."""
    return [interpreter, "-I", WRAPPER, *args]
