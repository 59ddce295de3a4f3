"""requirements.lock: `modelctl lock` pins a model environment's whole dependency set with hashes, the environment
is installed from it hash-checked, and a stale or tampered lock installs nothing.

Locking resolves against the package index (PyPI, as `uv pip compile` does anywhere); the environment builds use
the shared environment cache like every other test that builds one.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from modelctl import envs, lockfile
from tests.conftest import Cli

MODEL = "iris_classifier"


@pytest.fixture
def folder(monorepo: Path) -> Path:
    return monorepo / "models" / MODEL


def test_the_lock_pins_every_package_with_hashes_and_check_sees_it_go_stale(folder: Path, cli: Cli) -> None:
    assert cli("lock", "--all", "--check").code == 1  # a baked model has none yet
    result = cli("lock", MODEL)
    assert result.code == 0, result.err
    text = (folder / lockfile.LOCK).read_text()
    pins = re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", text, re.M)
    names = {name.lower() for name, _ in pins}
    # the model's own pins, what they bring, the dev tools, and the shared library's own dependencies
    assert {"bentoml", "scikit-learn", "pydantic", "pyarrow", "pytest", "locust", "starlette", "h11"} <= names
    assert ("scikit-learn", "1.9.1") in pins and len(pins) > 60
    assert "-e " not in text and "shared" not in text.split("\n", 3)[3]  # the repository's own code is not locked
    lockfile.check_hashes(text, folder / lockfile.LOCK)  # every package with a hash
    assert f"{MODEL}/requirements.lock: {len(pins)} packages" in result.out
    assert cli("lock", MODEL, "--check").code == 0

    requirements = folder / "requirements.txt"
    requirements.write_text(requirements.read_text() + "six==1.17.0\n")
    checked = cli("lock", MODEL, "--check")
    assert checked.code == 1 and "iris_classifier/requirements.lock is out of date" in checked.err
    assert "run `modelctl lock iris_classifier`" in checked.err
    with pytest.raises(envs.EnvError, match="out of date"):
        envs.content_key(folder.parents[1], folder)  # nothing is installed from a stale lock


def test_a_change_to_the_shared_library_s_dependencies_makes_every_lock_stale(monorepo: Path, cli: Cli) -> None:
    folder = monorepo / "models" / MODEL
    digest = lockfile.inputs_digest(folder)
    pyproject = monorepo / "shared" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a comment, and tool settings: no new dependency\n")
    assert lockfile.inputs_digest(folder) == digest
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6"', '"pyyaml>=6", "six"'))
    assert lockfile.inputs_digest(folder) != digest
    assert cli("lock", "--check", "--files", str(pyproject)).code == 1
    assert cli("lock", "--check", "--files", str(monorepo / "README.md")).code == 0  # not a model's input


def test_the_environment_installs_exactly_the_lock_and_refuses_a_tampered_file(
    folder: Path, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(envs.CACHE_VARIABLE, str(tmp_path / "envs"))
    cli("lock", MODEL).assert_success()
    lock = folder / lockfile.LOCK
    python = envs.python_of(folder.parents[1], MODEL, folder)
    frozen = subprocess.run(
        [str(envs._uv()), "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    installed = dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)$", frozen, re.M))
    # a package may be locked at two versions, each for its markers (scipy for Python < 3.12 and >= 3.12)
    locked = set(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+?)(?: ;.*)? \\$", lock.read_text(), re.M))
    for name, version in installed.items():
        assert (name, version) in locked, f"{name}=={version} is installed but not in the lock"
    assert "-e file://" in frozen or "modelkit" in frozen  # the shared library, from the checkout

    # A lock whose hashes for one package are not its files': the environment is not built.
    text = lock.read_text()
    block = re.search(r"^idna==[^\n]*(?:\n    --hash=sha256:[0-9a-f]{64}[^\n]*)+", text, re.M)
    assert block is not None
    lock.write_text(text.replace(block.group(0), re.sub(r"[0-9a-f]{64}", "0" * 64, block.group(0))))
    envs.forget(folder.parents[1], MODEL)
    with pytest.raises(envs.EnvError, match="(?i)hash"):
        envs.python_of(folder.parents[1], MODEL, folder)


def test_a_lock_line_without_a_hash_or_pointing_elsewhere_is_refused(tmp_path: Path) -> None:
    where = tmp_path / lockfile.LOCK
    lockfile.check_hashes("six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\n", where)
    for bad in ("six==1.17.0\n", "-e ../../shared\n", "six @ https://example.com/six.whl\n", "--index-url x\n"):
        with pytest.raises(lockfile.LockError, match="line 1"):
            lockfile.check_hashes(bad, where)


def test_pip_s_own_resolution_locks_what_pip_installs(tmp_path: Path) -> None:
    """The road torch models take (pip finds the CPU build on the machine's own disk): pip's report, one hash per
    package, the files pip would install."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "requirements-dev.txt").write_text("six==1.17.0\n")
    body = lockfile._pip_lock(folder, envs.installer_env(), timeout=300)
    assert re.fullmatch(r"six==1\.17\.0 \\\n    --hash=sha256:[0-9a-f]{64}\n", body)
