"""Model environments shared by content key (MODELCTL_ENV_CACHE): built once, never stale, never tied to a checkout."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from modelctl import envs
from tests.conftest import ROOT


def small_monorepo(path: Path, extra_requirement: str = "") -> Path:
    """A monorepo with shared/ and one model whose environment is only shared/ (pydantic, pyyaml): quick to build."""
    shutil.copytree(ROOT / "shared", path / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("tox.ini", "toxfile.py"):
        shutil.copy2(ROOT / name, path / name)
    model = path / "models" / "tiny"
    model.mkdir(parents=True)
    (model / "requirements.txt").write_text(f"-e ../../shared\n{extra_requirement}")
    (model / "requirements-dev.txt").write_text("-r requirements.txt\n")
    return path


def python_of(root: Path) -> Path:
    return envs.python_of(root, "tiny", root / "models" / "tiny")


def modelkit_file(python: Path) -> str:
    argv = [str(python), "-c", "import modelkit; print(modelkit.__file__)"]
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(envs.CACHE_VARIABLE, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.slow
def test_monorepos_with_the_same_inputs_share_one_environment_that_outlives_them(tmp_path: Path, cache: Path) -> None:
    first = small_monorepo(tmp_path / "a")
    python = python_of(first)
    stamp = python.parent.parent / envs.STAMP
    built = stamp.stat().st_mtime_ns
    second = small_monorepo(tmp_path / "b")
    envs.forget(second, "tiny")
    assert python_of(second) == python, "same requirements, same shared/ files: the same environment"
    assert stamp.read_text() == python.parent.parent.name and stamp.stat().st_mtime_ns >= built
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1
    # Installed from a snapshot kept inside the environment, so the checkout that built it may go.
    shutil.rmtree(first)
    assert modelkit_file(python).startswith(str(python.parent.parent / "src" / "shared"))


@pytest.mark.slow
def test_a_changed_requirement_or_shared_file_makes_a_new_environment(tmp_path: Path, cache: Path) -> None:
    root = small_monorepo(tmp_path / "repo")
    before = python_of(root)
    (root / "shared" / "src" / "modelkit" / "extra.py").write_text("VALUE = 1\n")
    envs.forget(root, "tiny")
    after_shared = python_of(root)
    assert after_shared != before, "a file of shared/ changed: a new key"
    argv = [str(after_shared), "-c", "import modelkit.extra; print(modelkit.extra.VALUE)"]
    assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip() == "1"
    requirements = root / "models" / "tiny" / "requirements.txt"
    requirements.write_text(requirements.read_text() + "six==1.17.0\n")
    envs.forget(root, "tiny")
    after_pin = python_of(root)
    assert after_pin not in (before, after_shared), "a new pin: a new key"
    argv = [str(after_pin), "-c", "import six; print(six.__version__)"]
    assert subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip() == "1.17.0"


def test_the_key_follows_content_not_location(tmp_path: Path) -> None:
    first, second = small_monorepo(tmp_path / "a"), small_monorepo(tmp_path / "b")
    key = envs.content_key(first, first / "models" / "tiny")
    assert envs.content_key(second, second / "models" / "tiny") == key
    (second / "shared" / "__pycache__").mkdir()
    (second / "shared" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert envs.content_key(second, second / "models" / "tiny") == key, "caches are not content"
    (second / "tox.ini").write_text((second / "tox.ini").read_text() + "\n# changed\n")
    assert envs.content_key(second, second / "models" / "tiny") != key


def test_a_local_requirement_that_is_not_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    root = small_monorepo(tmp_path / "repo")
    (root / "models" / "tiny" / "requirements.txt").write_text("-e ../../nowhere\n")
    with pytest.raises(envs.EnvError, match=r"'-e \.\./\.\./nowhere' points at .*nowhere, which is not a folder"):
        envs.content_key(root, root / "models" / "tiny")


@pytest.mark.slow
def test_a_failed_build_leaves_no_environment_behind(tmp_path: Path, cache: Path) -> None:
    root = small_monorepo(tmp_path / "repo", "no-such-package-modelctl-test==0.0.1\n")
    with pytest.raises(envs.EnvError, match="could not create the environment of tiny"):
        python_of(root)
    assert not [p for p in cache.iterdir() if p.is_dir()], "nothing half-built is kept"
