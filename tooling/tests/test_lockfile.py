"""requirements.lock: `modelctl lock` pins a model environment's whole dependency set with hashes, the environment
is installed from it hash-checked (wheels only, no resolution, no build backend from the index), and a stale,
hand-edited or missing lock installs nothing.

Locking resolves against the package index (PyPI, as `uv pip compile` does anywhere); the environment builds use
the shared environment cache like every other test that builds one.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from modelctl import envs, lockfile
from tests.conftest import Cli

MODEL = "iris_classifier"


@pytest.fixture
def folder(monorepo: Path) -> Path:
    return monorepo / "models" / MODEL


def test_the_lock_pins_every_package_with_hashes_and_check_sees_it_go_stale(folder: Path, cli: Cli) -> None:
    (folder / lockfile.LOCK).unlink()  # the example carries this checkout's lock: made again here
    assert cli("lock", "--all", "--check").code == 1
    result = cli("lock", MODEL)
    assert result.code == 0, result.err
    lock = folder / lockfile.LOCK
    text = lock.read_text()
    pins = re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)", text, re.M)
    names = {name.lower() for name, _ in pins}
    # the model's own pins, what they bring, the dev tools, the shared library's needs and its build backend
    assert {"bentoml", "scikit-learn", "pydantic", "pyarrow", "pytest", "locust", "hatchling", "editables"} <= names
    assert ("scikit-learn", "1.9.1") in pins and len(pins) > 60
    assert "-e " not in text and "shared" not in text.split("\n", 3)[3]  # the repository's own code is not locked
    assert lock.stat().st_mode & 0o777 == 0o644
    assert not list(folder.glob(".modelctl-build-requirements*")) and not list(folder.glob(".requirements.lock.*"))
    assert f"{MODEL}/requirements.lock: {len(pins)} packages" in result.out
    assert cli("lock", MODEL, "--check").code == 0

    requirements = folder / "requirements.txt"
    requirements.write_text(requirements.read_text() + "six==1.17.0\n")
    checked = cli("lock", MODEL, "--check")
    assert checked.code == 1 and "iris_classifier/requirements.lock is out of date" in checked.err
    assert "run `modelctl lock iris_classifier`" in checked.err
    with pytest.raises(envs.EnvError, match="out of date"):
        envs.content_key(folder.parents[1], folder)  # nothing is installed from a stale lock


def test_a_lock_edited_by_hand_is_refused(folder: Path) -> None:
    lock = folder / lockfile.LOCK
    text = lock.read_text()
    assert lockfile.status(folder).state == "current"
    hashed = "--hash=sha256:" + "ab" * 32
    for edit, reason in (
        (text + f"colorama==0.4.6 \\\n    {hashed}\n", "not the ones `modelctl lock` wrote"),
        ("\n".join([*text.split("\n")[:3], "--find-links ./.vendor", *text.split("\n")[3:]]), "not the ones"),
        (re.sub(r"^(scikit-learn==)1\.9\.1", r"\g<1>1.9.0", text, flags=re.M), "not the ones"),
        ("# modelctl lock\n" + text.split("\n", 1)[1], "first line is not the header"),
    ):
        lock.write_text(edit)
        state = lockfile.status(folder)
        assert state.state == "invalid" and reason in state.message, state.message
        assert "never edit it by hand" in state.message
        with pytest.raises(envs.EnvError, match="cannot be used"):
            envs.content_key(folder.parents[1], folder)


def test_a_consistent_forgery_still_fails_the_line_and_pin_checks(folder: Path) -> None:
    """Whoever recomputes the body digest still cannot add an option line or drop a pin of requirements.txt."""
    lock = folder / lockfile.LOCK
    header, *comments, body = lock.read_text().split("\n", 3)

    def forge(new_body: str) -> None:
        digest = hashlib.sha256(new_body.encode()).hexdigest()
        lock.write_text("\n".join([re.sub(r"body sha256 [0-9a-f]{64}", f"body sha256 {digest}", header), *comments])
                        + "\n" + new_body)  # fmt: skip

    forge("--find-links ./.vendor\n" + body)
    assert "is not a pinned package with its hashes ('--find-links ./.vendor')" in lockfile.status(folder).reason
    forge(re.sub(r"^scikit-learn==1\.9\.1 \\\n(    --hash=\S+ \\\n)*    --hash=\S+\n", "", body, flags=re.M))
    assert "requirements.txt pins scikit-learn==1.9.1, which the lock does not" in lockfile.status(folder).reason
    forge(re.sub(r"^(idna==\S+) \\\n", r"\1\n", body, count=1, flags=re.M))
    assert lockfile.status(folder).state == "invalid"


def test_inputs_the_digest_covers(monorepo: Path, folder: Path, cli: Cli) -> None:
    digest = lockfile.inputs_digest(folder)
    pyproject = monorepo / "shared" / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a comment, and tool settings: no new dependency\n")
    assert lockfile.inputs_digest(folder) == digest
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6"', '"pyyaml>=6", "six"'))
    assert lockfile.inputs_digest(folder) != digest
    assert cli("lock", "--check", "--files", str(pyproject)).code == 1
    assert cli("lock", "--check", "--files", str(monorepo / "README.md")).code == 0  # not a model's input

    digest = lockfile.inputs_digest(folder)
    (folder / "constraints.txt").write_text("idna==3.10\n")
    dev = folder / "requirements-dev.txt"
    dev.write_text(dev.read_text() + "-c constraints.txt\n")
    with_constraints = lockfile.inputs_digest(folder)
    assert with_constraints != digest
    (folder / "constraints.txt").write_text("idna==3.7\n")  # the file's content, not only its name
    assert lockfile.inputs_digest(folder) != with_constraints


def test_a_change_in_a_file_another_model_includes_checks_that_model_too(monorepo: Path, cli: Cli) -> None:
    other = monorepo / "models" / "other_model"
    other.mkdir()
    (other / "config.yaml").write_text((monorepo / "models" / MODEL / "config.yaml").read_text())
    (other / "requirements-dev.txt").write_text(f"-r ../{MODEL}/requirements-dev.txt\n")
    changed = monorepo / "models" / MODEL / "requirements.txt"
    from modelctl.commands.lock import models_of
    from modelctl.repo import Repo

    assert models_of(Repo(monorepo), [changed]) == [MODEL, "other_model"]


def test_what_cannot_be_locked_is_named(folder: Path, cli: Cli) -> None:
    requirements = folder / "requirements.txt"
    original = requirements.read_text()
    for line, reason in (
        ("six @ https://example.com/six-1.17.0-py2.py3-none-any.whl", "installs from a URL, which cannot be locked"),
        ("-e ../../../elsewhere", "is a project outside the repository"),
        ("--no-binary idna", "only index options"),
    ):
        requirements.write_text(original + line + "\n")
        result = cli("lock", MODEL)
        assert result.code == 1 and reason in result.err, result.err
    (folder / "requirements-dev.txt").unlink()
    result = cli("lock", MODEL, "--check")
    assert result.code == 1 and "iris_classifier: cannot read its requirements" in result.err
    assert "Traceback" not in result.err


def test_without_a_lock_nothing_is_installed_unless_allowed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / lockfile.LOCK).unlink()
    monkeypatch.delenv(lockfile.ALLOW_UNLOCKED, raising=False)
    with pytest.raises(envs.EnvError, match=r"requirements.lock is missing: run `modelctl lock iris_classifier`"):
        envs.content_key(folder.parents[1], folder)
    monkeypatch.setenv(lockfile.ALLOW_UNLOCKED, "1")
    envs.content_key(folder.parents[1], folder)


def fake_backend(folder: Path, marker: Path) -> None:
    """A wheel named like the build backend, from a compromised index: it writes ``marker`` when imported."""
    folder.mkdir(parents=True)
    files = {
        "hatchling/__init__.py": f"open({str(marker)!r}, 'w').write('pwned')\n",
        "hatchling/build.py": "from hatchling import *\n",
        "hatchling-99.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: hatchling\nVersion: 99.0\n",
        "hatchling-99.0.dist-info/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    with zipfile.ZipFile(folder / "hatchling-99.0-py3-none-any.whl", "w") as wheel:
        for name, content in files.items():
            wheel.writestr(name, content)
            digest = base64.urlsafe_b64encode(hashlib.sha256(content.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{name},sha256={digest},{len(content)}")
        wheel.writestr("hatchling-99.0.dist-info/RECORD", "\n".join([*record, "hatchling-99.0.dist-info/RECORD,,"]))


def test_the_environment_installs_exactly_the_lock_and_no_backend_from_the_index(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(envs.CACHE_VARIABLE, str(tmp_path / "envs"))
    marker = tmp_path / "PWNED"
    fake_backend(tmp_path / "evil-index", marker)
    monkeypatch.setenv("UV_FIND_LINKS", str(tmp_path / "evil-index"))  # a newer "hatchling" on offer
    (folder / "uv.toml").write_text('[pip]\nno-binary = ["idna"]\n')  # the model folder's own uv settings
    lock = folder / lockfile.LOCK
    python = envs.python_of(folder.parents[1], MODEL, folder)
    assert not marker.exists(), "a build backend came from the index"
    frozen = subprocess.run(
        [str(envs._uv()), "pip", "freeze", "--python", str(python)], capture_output=True, text=True, check=True
    ).stdout
    installed = dict(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+)$", frozen, re.M))
    # a package may be locked at two versions, each for its markers (scipy for Python < 3.12 and >= 3.12)
    locked = set(re.findall(r"^([A-Za-z0-9][\w.-]*)==(\S+?)(?: ;.*)? \\$", lock.read_text(), re.M))
    for name, version in installed.items():
        assert (name, version) in locked, f"{name}=={version} is installed but not in the lock"
    assert installed.get("hatchling") != "99.0"
    imported = subprocess.run([str(python), "-c", "import idna, modelkit"], capture_output=True, text=True)
    assert imported.returncode == 0, imported.stderr  # idna as its locked wheel (not built), modelkit from shared/

    # A lock whose hashes for one package are not its files' (digests made to match): the environment is not built.
    text = lock.read_text()
    block = re.search(r"^idna==[^\n]*(?:\n    --hash=sha256:[0-9a-f]{64}[^\n]*)+", text, re.M)
    assert block is not None
    first, comments, body = text.split("\n", 1)[0], text.split("\n", 3)[1:3], text.split("\n", 3)[3]
    body = body.replace(block.group(0), re.sub(r"[0-9a-f]{64}", "0" * 64, block.group(0)))
    digest = hashlib.sha256(body.encode()).hexdigest()
    first = re.sub(r"body sha256 [0-9a-f]{64}", f"body sha256 {digest}", first)
    lock.write_text("\n".join([first, *comments]) + "\n" + body)
    assert lockfile.status(folder).state == "current"
    envs.forget(folder.parents[1], MODEL)
    with pytest.raises(envs.EnvError, match="(?i)hash"):
        envs.python_of(folder.parents[1], MODEL, folder)


def test_a_pip_lock_is_for_the_platform_it_was_made_on(folder: Path) -> None:
    lock = folder / lockfile.LOCK
    text = lock.read_text()
    lock.write_text(text.replace("(uv universal py3.11)", "(pip darwin cp313)", 1))
    state = lockfile.status(folder)
    assert state.state == "invalid" and "made by pip for darwin cp313; this machine is linux cp311" in state.reason


def test_pip_s_own_resolution_locks_what_pip_installs(tmp_path: Path) -> None:
    """The road torch models take (pip finds the CPU build on the machine's own disk): pip's report, one hash per
    wheel, the files pip would install."""
    folder = tmp_path / "repo" / "models" / "model"
    folder.mkdir(parents=True)
    (folder / "requirements-dev.txt").write_text("six==1.17.0\n")
    body = lockfile._pip_lock(folder, [], envs.installer_env(), timeout=300)
    assert re.fullmatch(r"six==1\.17\.0 \\\n    --hash=sha256:[0-9a-f]{64}\n", body)
    assert not (folder / ".modelctl-build-requirements.txt").exists()
