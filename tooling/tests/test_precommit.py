"""The repo's .pre-commit-config.yaml really blocks bad commits (real git, real pre-commit, PyPI hooks)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import git

pytestmark = pytest.mark.slow


def commit(repo: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    """`git commit` with the hook's report (git prints it on stderr) in ``stdout``."""
    git(repo, "add", *paths)
    return subprocess.run(
        ["git", "commit", "-m", "change"],
        cwd=repo,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


@pytest.fixture
def hooked(monorepo: Path) -> Path:
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install", "--install-hooks"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    return monorepo


def test_notebook_outputs_are_stripped_before_they_reach_git(hooked: Path) -> None:
    path = "models/iris_classifier/notebooks/iris_classifier.ipynb"
    notebook = json.loads((hooked / path).read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    cell["execution_count"] = 7
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["secret customer data\n"]}]
    notebook["cells"].append(
        {
            "cell_type": "code",
            "id": "new-cell",
            "metadata": {"ExecuteTime": {"start": "2026-11-27"}},
            "execution_count": 8,
            "source": ["print(len(data.target))"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["150\n"]}],
        }
    )
    notebook["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    (hooked / path).write_text(json.dumps(notebook, indent=1) + "\n")

    first = commit(hooked, path)
    assert first.returncode != 0, "a notebook with outputs must not be committed as is"
    assert "nbstripout" in first.stdout

    second = commit(hooked, path)  # the hook fixed the file; stage the fix and commit
    assert second.returncode == 0, second.stdout
    blob = json.loads(git(hooked, "show", f"HEAD:{path}"))
    assert all(c.get("outputs", []) == [] and c.get("execution_count") is None for c in blob["cells"])
    assert blob["cells"][-1]["source"] == ["print(len(data.target))"] and blob["cells"][-1]["metadata"] == {}
    assert "language_info" not in blob["metadata"]
    assert [c["id"] for c in blob["cells"]] == [c["id"] for c in notebook["cells"]], "cell ids are kept"


def test_unfixable_ruff_error_blocks(hooked: Path) -> None:
    (hooked / "models/iris_classifier/helpers.py").write_text("def f():\n    return undefined_name\n")
    result = commit(hooked, "models/iris_classifier/helpers.py")
    assert result.returncode != 0
    assert "F821" in result.stdout and "undefined_name" in result.stdout


def test_invalid_model_config_blocks_with_key_path(hooked: Path) -> None:
    path = "models/iris_classifier/config.yaml"
    (hooked / path).write_text((hooked / path).read_text().replace("workers: 1", "workers: 0"))
    result = commit(hooked, path)
    assert result.returncode != 0
    assert "serving.workers: 0 is invalid: expected a value >= 1" in result.stdout


def test_private_key_blocks(hooked: Path) -> None:
    marker = "RSA " + "PRIVATE KEY"  # split so this test file does not trip the hook itself
    key = f"-----BEGIN {marker}-----\nMIIEowIBAAKCAQEA\n-----END {marker}-----\n"
    (hooked / "models/iris_classifier/deploy_key").write_text(key)
    result = commit(hooked, "models/iris_classifier/deploy_key")
    assert result.returncode != 0
    assert "Private key found" in result.stdout


def test_clean_change_commits(hooked: Path) -> None:
    path = "models/iris_classifier/README.md"
    (hooked / path).write_text((hooked / path).read_text() + "\nMore notes.\n")
    result = commit(hooked, path)
    assert result.returncode == 0, result.stdout
