"""The environment a model's own code runs in: an allow-list, so no credential reaches it."""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Mapping
from pathlib import Path

# A model's own code (train.py, its tests, the served bento, Locust) gets this environment and nothing else: no
# deploy, store or GitHub credentials reach code that a data scientist (or a dependency) wrote.
_PASSED = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM", "TMPDIR", "TEMP", "TMP",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
        "CI", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
    }
)  # fmt: skip
_PASSED_PREFIXES = ("LC_", "XDG_", "BENTOML_", "MODEL_", "OPENBLAS_", "OMP_", "MKL_", "NUMEXPR_")


def model_process_env(
    extra: Mapping[str, str] | None = None, data_url: str | None = None, python: Path | None = None
) -> dict[str, str]:
    """The environment for processes that run a model's code: an allow-list of this one (locale, paths, proxies,
    BENTOML_*, MODEL_*), the model's own data URL variable ``data_url``, then ``extra``.

    With ``python`` (the interpreter of the model's environment), bytecode is cached inside that environment
    (`PYTHONPYCACHEPREFIX`), never beside the sources, even where PYTHONDONTWRITEBYTECODE is set: otherwise every
    process of a run (tests, training, build, each server process, Locust) compiles bentoml, pydantic and the
    framework from source again, about 2.5 s each on the development machine."""
    env = {k: v for k, v in os.environ.items() if k in _PASSED or k.startswith(_PASSED_PREFIXES)}
    if data_url and data_url in os.environ:
        env[data_url] = os.environ[data_url]
    env["BENTOML_DO_NOT_TRACK"] = "true"
    if python is not None:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(pycache_of(python))
    env.update(extra or {})
    return env


def pycache_of(python: Path) -> Path:
    """Where a model environment's bytecode is cached: a folder of the environment (``<env>/pycache``), removed
    with it. ``python`` is the environment's interpreter (``<env>/bin/python``), not resolved: a venv's
    interpreter is a link to the base Python."""
    return python.parent.parent / "pycache"


_PR_SET_DUMPABLE = 4  # <linux/prctl.h>


def seal_own_environment() -> bool:
    """Make this process non-dumpable (Linux ``prctl(PR_SET_DUMPABLE, 0)``): its ``/proc/<pid>/environ``, ``mem``
    and ``maps`` become readable by root only, and no process of the same user can ptrace it.

    modelctl holds credentials in its environment (the state store's, a deploy target's) while it starts model
    code with an allow-listed environment; without this, that code, running as the same user, could read them
    back from ``/proc/<modelctl's pid>/environ``. The flag is not inherited across ``exec``: the processes
    modelctl starts are ordinary. True when the flag is set; False where the platform has no prctl."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False
