"""The repo's .pre-commit-config.yaml really blocks bad commits (real git, real pre-commit, PyPI hooks).

Fake secrets and conflict markers are assembled at run time, so this file itself passes the hooks.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, git

slow = pytest.mark.slow
MODEL = "models/iris_classifier"
TEMPLATE = "cookiecutter-model/{{cookiecutter.model_slug}}"
# Fake credentials in the shapes scanners know (AWS's documented example key pair, a Slack webhook
# URL, a random password), split so that no line of this file holds one.
AWS = "AKIA" + "IOSFODNN7" + "EXAMPLE"
AWS_PAIR = "wJalrXUtn" + "FEMI/K7MDENG/" + "bPxRfiCY" + "EXAMPLEKEY"
SLACK = "https://hooks.slack.com/" + "services/" + "T0A1B2C3D4/" + "B5E6F7G8H9/" + "abcdEFGHijkl" + "MNOPqrstUVWX"
PHRASE = "k3J9xQ2v" + "L8pR5tW1zN7m"
ENTROPY = "Ab4Cd6Ef" + "0Gh2Ij8K" + "l5MoPy"
SEVEN = {"open": "<" * 7, "base": "|" * 7, "split": "=" * 7, "close": ">" * 7}


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
    if not (monorepo / ".secrets.baseline").exists():  # conftest's COPY predates the secret scanner
        shutil.copy2(ROOT / ".secrets.baseline", monorepo / ".secrets.baseline")
        git(monorepo, "add", ".secrets.baseline")
        git(monorepo, "commit", "-q", "--no-verify", "-m", "secrets baseline")
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install", "--install-hooks"],
        cwd=monorepo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    return monorepo


@slow
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


@slow
def test_unfixable_ruff_error_blocks(hooked: Path) -> None:
    (hooked / "models/iris_classifier/helpers.py").write_text("def f():\n    return undefined_name\n")
    result = commit(hooked, "models/iris_classifier/helpers.py")
    assert result.returncode != 0
    assert "F821" in result.stdout and "undefined_name" in result.stdout


@slow
def test_invalid_model_config_blocks_with_key_path(hooked: Path) -> None:
    path = "models/iris_classifier/config.yaml"
    # Whether or not the template writes `workers` out, the model now sets it to 0.
    text = re.sub(r"^  workers: .*\n", "", (hooked / path).read_text(), flags=re.MULTILINE)
    assert "\nserving:\n" in text
    (hooked / path).write_text(text.replace("\nserving:\n", "\nserving:\n  workers: 0\n", 1))
    result = commit(hooked, path)
    assert result.returncode != 0
    assert "serving.workers: 0 is invalid: expected a value >= 1" in result.stdout


@slow
def test_private_key_blocks(hooked: Path) -> None:
    marker = "RSA " + "PRIVATE KEY"  # split so this test file does not trip the hook itself
    key = f"-----BEGIN {marker}-----\nMIIEowIBAAKCAQEA\n-----END {marker}-----\n"
    (hooked / "models/iris_classifier/deploy_key").write_text(key)
    result = commit(hooked, "models/iris_classifier/deploy_key")
    assert result.returncode != 0
    assert "Private key found" in result.stdout


@slow
def test_clean_change_commits(hooked: Path) -> None:
    path = "models/iris_classifier/README.md"
    (hooked / path).write_text((hooked / path).read_text() + "\nMore notes.\n")
    result = commit(hooked, path)
    assert result.returncode == 0, result.stdout


def conflict(ours: str, base: str, theirs: str) -> str:
    """A conflict as `modelctl upgrade` (git merge-file --diff3) writes it."""
    return (
        f"{SEVEN['open']} {MODEL}/train.py (yours)\n{ours}\n{SEVEN['base']} template 1111111\n{base}\n"
        f"{SEVEN['split']}\n{theirs}\n{SEVEN['close']} template 2222222\n"
    )


@slow
def test_conflict_markers_block_outside_a_merge(hooked: Path) -> None:
    path = f"{MODEL}/train.py"
    text = (hooked / path).read_text()
    (hooked / path).write_text(text + "\n" + conflict("SEED = 7", "SEED = 42", "SEED = 0"))
    head = git(hooked, "rev-parse", "HEAD")
    result = commit(hooked, path)
    assert result.returncode != 0
    assert f"{path}:" in result.stdout and "Merge conflict string" in result.stdout
    assert git(hooked, "rev-parse", "HEAD") == head, "nothing was committed"


@slow
@pytest.mark.parametrize(
    ("name", "content", "found"),
    [
        ("aws", f'ACCESS_KEY_ID = "{AWS}"\nSECRET_ACCESS_KEY = "{AWS_PAIR}"\n', "AWS Access Key"),
        ("slack", f'ALERTS_WEBHOOK = "{SLACK}"\n', "Slack"),
        ("password", f'DB_PASSWORD = "{PHRASE}"\n', "Secret Keyword"),
        ("entropy", f'TOKEN = "{PHRASE}{ENTROPY}"\n', "High Entropy String"),
    ],
)
def test_secrets_in_a_model_file_block(hooked: Path, name: str, content: str, found: str) -> None:
    path = f"{MODEL}/settings_{name}.py"
    (hooked / path).write_text(content)
    result = commit(hooked, path)
    assert result.returncode != 0, result.stdout
    assert "detect secrets" in result.stdout and found in result.stdout, result.stdout


@slow
def test_the_templates_jinja_files_get_the_text_hooks(hooked: Path) -> None:
    settings = f"{TEMPLATE}/settings.yaml"  # Jinja YAML: not parsed (check-yaml skips it), still scanned
    (hooked / settings).write_text(f'name: {{{{ cookiecutter.model_slug }}}}\naws_key: "{AWS}"\n')
    result = commit(hooked, settings)
    assert result.returncode != 0 and "AWS Access Key" in result.stdout, result.stdout
    assert "check yaml" in result.stdout and "Failed" not in result.stdout.split("check yaml")[1].split("\n")[0]

    readme = f"{TEMPLATE}/README.md"
    (hooked / readme).write_text((hooked / readme).read_text() + conflict("a", "b", "c"))
    result = commit(hooked, readme)
    assert result.returncode != 0 and "Merge conflict string" in result.stdout

    git(hooked, "checkout", "HEAD", "--", readme)  # index and file
    (hooked / settings).write_text("name: {{ cookiecutter.model_slug }}   \n")  # trailing blanks: fixed
    first = commit(hooked, settings)
    assert first.returncode != 0 and "trim trailing whitespace" in first.stdout
    assert (hooked / settings).read_text() == "name: {{ cookiecutter.model_slug }}\n"
    assert commit(hooked, settings).returncode == 0


@slow
def test_this_repository_passes_every_hook(tmp_path: Path) -> None:
    """The working tree of this checkout (tracked files as they are now) in a fresh repository."""
    copy = tmp_path / "copy"
    files = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    git(copy, "init", "-q", "-b", "main")
    git(copy, "add", "-A")
    git(copy, "commit", "-q", "--no-verify", "-m", "copy")
    result = subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files", "--show-diff-on-failure"],
        cwd=copy,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    assert "detect secrets" in result.stdout and "check for conflict markers" in result.stdout


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        (".env", True),
        (".env.production", True),
        (f"{MODEL}/.env", True),
        (".env.example", False),
        (f"{MODEL}/model.pkl", True),
        (f"{MODEL}/model.joblib", True),
        (f"{MODEL}/weights.pt", True),
        (f"{MODEL}/model.onnx", True),
        (f"{MODEL}/model.h5", True),
        (f"{MODEL}/model.safetensors", True),
        (f"{MODEL}/train.parquet", True),
        (f"{MODEL}/rows.npz", True),
        (f"{MODEL}/local.db", True),
        (f"{MODEL}/local.sqlite", True),
        (f"{MODEL}/data/train.csv", True),
        (f"{MODEL}/train.py", False),
        (f"{MODEL}/config.yaml", False),
        (f"{MODEL}/sample_request.json", False),
        (f"{TEMPLATE}/train.py", False),
        # what the project's tools leave behind when run by hand from the root (issue 19.4)
        (".schemathesis/cassette.yaml", True),
        (".hypothesis/examples/x", True),
        (".pytest_cache/v/cache/nodeids", True),
        (".ruff_cache/0.17.5/x", True),
        (".mypy_cache/3.11/x.json", True),
        (".tox/tooling/bin/python", True),
        (".venv/bin/python", True),
        (f"{MODEL}/__pycache__/train.cpython-311.pyc", True),
        (f"{MODEL}/.ipynb_checkpoints/x-checkpoint.ipynb", True),
        (".benchmarks/Linux/0001.json", True),
        ("reports/iris_classifier/report.html", True),
        (".modelctl/state/ledger.json", True),
        ("tooling/src/modelctl.egg-info/PKG-INFO", True),
        ("airflow.db", True),
        ("site/index.html", True),
    ],
)
def test_gitignore(path: str, ignored: bool) -> None:
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "-q", path], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert (result.returncode == 0) is ignored, (path, result.stderr)


def test_gitignore_hides_no_tracked_file() -> None:
    assert git(ROOT, "ls-files", "-ci", "--exclude-standard") == ""
