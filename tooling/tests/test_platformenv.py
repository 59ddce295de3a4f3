"""The platform's BentoML environment: built only from its hashed lock, once, isolated from model code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from modelctl import platformenv
from modelctl.envs import CACHE_VARIABLE


def test_every_locked_package_is_pinned_with_hashes() -> None:
    text = platformenv.LOCK.read_text()
    entries = [line for line in text.splitlines() if line and not line.startswith((" ", "#"))]
    assert any(line.startswith("bentoml==1.4.40 ") for line in entries)
    assert entries and all("==" in line for line in entries)
    blocks = text.split("\n\n")
    assert "--hash=sha256:" in text and all("--hash=sha256:" in b for b in blocks if "==" in b)


def test_the_template_pins_the_same_bentoml() -> None:
    template = Path(platformenv.__file__).parents[3] / "cookiecutter-model" / "{{cookiecutter.model_slug}}"
    assert "bentoml==1.4.40" in (template / "requirements.txt").read_text()


def test_a_package_whose_hash_differs_is_refused_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock whose hash is not the file's: nothing is installed, no environment folder is left."""
    lock = tmp_path / "bentoml.lock"
    lock.write_text("six==1.16.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "envs"))
    with pytest.raises(platformenv.PlatformEnvError, match="cannot build the platform's bentoml environment"):
        platformenv.python(tmp_path / "state", platformenv.Spec("bentoml", lock))
    left = [p.name for p in (tmp_path / "envs").iterdir() if not p.name.endswith(".lock")]
    assert left in ([], [".platform-uv-cache"]), left


@pytest.mark.slow
def test_built_once_and_runs_bentoml_isolated(tmp_path: Path) -> None:
    first = platformenv.python(tmp_path / "state")
    assert platformenv.python(tmp_path / "state") == first
    # A module in the current folder named like one of BentoML's imports is not picked up (-I).
    (tmp_path / "yaml.py").write_text("raise SystemExit('the current folder was imported')\n")
    result = subprocess.run(
        [str(a) for a in platformenv.command(first, "--version")],
        cwd=tmp_path,
        env=platformenv.environment(tmp_path / "bentoml"),
        input=platformenv.secrets_input({"HANDED_OVER": "on-stdin"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and "1.4.40" in result.stdout, result.stderr


def test_the_wrapper_seals_and_keeps_handed_variables_out_of_its_proc_entry(tmp_path: Path) -> None:
    """runtime/platform_bentoml.py, with a stand-in `bentoml` package that reports what the process shows."""
    package = tmp_path / "site" / "bentoml"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__main__.py").write_text(
        "import ctypes, json, os, sys\n"
        "environ = open(f'/proc/{os.getpid()}/environ', 'rb').read().decode()\n"
        "print(json.dumps({'argv': sys.argv, 'dumpable': ctypes.CDLL(None).prctl(3, 0, 0, 0, 0),\n"
        "    'in_os_environ': os.environ.get('HANDED_OVER'), 'in_proc': 'HANDED_OVER' in environ}))\n"
    )
    result = subprocess.run(
        [sys.executable, str(platformenv.WRAPPER), "deploy", "-f", "x.yaml"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")},
        input=platformenv.secrets_input({"HANDED_OVER": "on-stdin"}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["argv"][1:] == ["deploy", "-f", "x.yaml"], "bentoml's CLI gets the arguments"
    assert shown["dumpable"] == 0, "sealed before bentoml runs"
    assert shown["in_os_environ"] == "on-stdin" and shown["in_proc"] is False, "handed over, not in /proc"
