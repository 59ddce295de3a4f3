"""The platform's own BentoML: the one environment modelctl runs BentoML in when credentials or the bento store
are at stake (`bentoml deploy`, `import`, `export`, `containerize`), never a model's.

A model's environment holds whatever its requirements bring; any package there runs code when Python starts
(``.pth`` files, ``sitecustomize``), so it never runs with a deploy credential in reach. This environment holds
BentoML and what it needs, installed only from ``locks/bentoml.lock`` (every package pinned, with hashes), and is
run isolated (``python -I``: no PYTHON* variables, no user site, not the current folder).

It is built once per lock and interpreter, under a file lock, in a temporary folder renamed into place when
complete: in ``MODELCTL_ENV_CACHE`` when set (tests, CI caches), else in the state folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

from filelock import FileLock

from modelctl import cmd
from modelctl.envs import CACHE_VARIABLE
from modelctl.errors import ModelctlError
from modelctl.processenv import model_process_env

LOCK = Path(__file__).parent / "locks" / "bentoml.lock"
BUILD_TIMEOUT_S = 900.0


class PlatformEnvError(ModelctlError):
    pass


def key() -> str:
    """What the environment is built from: the lock and the interpreter."""
    try:
        digest = hashlib.sha256(LOCK.read_bytes())
    except OSError as exc:
        raise PlatformEnvError(f"cannot read {LOCK}: {exc}; reinstall modelctl") from exc
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def _cache_root(state_root: Path) -> Path:
    cache = os.environ.get(CACHE_VARIABLE, "").strip()
    return Path(cache) if cache else state_root / "envs"


def python(state_root: Path) -> Path:
    """The interpreter of the platform's BentoML environment, built if missing."""
    root = _cache_root(state_root)
    folder = root / f"platform-bentoml-{key()}"
    interpreter = folder / "bin" / "python"
    if interpreter.is_file():
        return interpreter
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / f".platform-bentoml-{key()}.lock"), timeout=BUILD_TIMEOUT_S):
        if interpreter.is_file():  # another process built it while this one waited
            return interpreter
        _build(folder)
    return interpreter


def _build(folder: Path) -> None:
    from uv import find_uv_bin

    uv = find_uv_bin()
    partial = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    # Package installs can run code (an sdist's build): the installer's own settings, never a credential.
    installer = model_process_env({k: v for k, v in os.environ.items() if k.startswith(("UV_", "PIP_"))})
    try:
        cmd.run(
            [uv, "venv", "--quiet", "--relocatable", "--python", sys.executable, partial],
            what="creating the platform's BentoML environment",
            env=installer,
            timeout=BUILD_TIMEOUT_S,
        )
        cmd.run(
            [uv, "pip", "install", "--quiet", "--require-hashes", "--python", partial / "bin" / "python", "-r", LOCK],
            what=f"installing the platform's BentoML from {LOCK.name} (hashes required)",
            env=installer,
            timeout=BUILD_TIMEOUT_S,
        )
        partial.rename(folder)
    except (cmd.CommandError, OSError) as exc:
        raise PlatformEnvError(f"cannot build the platform's BentoML environment in {folder}: {exc}") from exc
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def environment(bentoml_home: Path, credentials: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a platform BentoML call: the allow-listed base, the store, and ``credentials`` (the
    caller picks exactly what the call needs: BentoCloud's token for a deploy, Docker's settings to containerize;
    nothing for import and export)."""
    return model_process_env({"BENTOML_HOME": str(bentoml_home), **(credentials or {})})


def bentoml_argv(interpreter: Path, *args: str | Path) -> list[str | Path]:
    """``python -I -m bentoml ARGS``: isolated from PYTHON* variables, the user site and the current folder."""
    return [interpreter, "-I", "-m", "bentoml", *args]
