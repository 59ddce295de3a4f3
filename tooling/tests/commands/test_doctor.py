"""Every doctor check has a passing and a failing case, on a real copy of the example model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from modelctl.doctor import CHECKS, MC011, ModelFolder, run_checks
from tests.conftest import Cli

MODEL = "iris_classifier"


def _replace(relative: str, old: str, new: str) -> Callable[[Path], None]:
    def mutate(folder: Path) -> None:
        path = folder / relative
        text = path.read_text()
        assert old in text, (relative, old)
        path.write_text(text.replace(old, new))

    return mutate


def _notebook_with_output(folder: Path) -> None:
    path = folder / "notebooks" / f"{MODEL}.ipynb"
    notebook = json.loads(path.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "code")
    cell["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hi\n"]}]
    cell["execution_count"] = 1
    path.write_text(json.dumps(notebook, indent=1) + "\n")


def _trivial_service_test(folder: Path) -> None:
    (folder / "tests" / "test_service.py").write_text("def test_it():\n    assert True\n")


def _no_training_test(folder: Path) -> None:
    (folder / "tests" / "test_train.py").unlink()


def _secret(folder: Path) -> None:
    (folder / "settings.py").write_text('AWS_KEY = "AKIA' + "ABCDEFGHIJKLMNOP" + '"\n')


def _hook_failure(folder: Path) -> None:
    (folder / "helpers.py").write_text("def f():\n    return undefined_name\n")


def _symlink(folder: Path) -> None:
    (folder.parent.parent / "train.csv").write_text("x\n1\n")
    (folder / "train.csv").symlink_to("../../train.csv")


BREAK = {
    "MC001": (_replace("config.yaml", "spawn_rate: 25", "spawn_rate: 0"), "loadtest.spawn_rate"),
    "MC002": (_replace("config.yaml", "  max_p90_ms: 500\n", ""), "loadtest.max_p90_ms"),
    "MC003": (_trivial_service_test, "never uses '/predict'"),
    "MC004": (_no_training_test, "no tests/test_train*.py"),
    "MC005": (_notebook_with_output, f"notebooks/{MODEL}.ipynb has outputs"),
    "MC006": (_replace("requirements.txt", "numpy==2.4.6", "numpy>=2"), "not pinned: numpy>=2"),
    "MC007": (_replace("requirements.txt", "-e ../../shared", ""), "no `-e ../../shared` line"),
    "MC008": (_replace("sample_request.json", '"instances"', '"rows"'), "has no 'instances' rows"),
    "MC009": (_secret, "settings.py contains a AWS access key"),
    "MC010": (_hook_failure, "ruff check"),
    "MC011": (_symlink, "train.csv -> ../../train.csv"),
    "MC012": (_replace("requirements.txt", "numpy==2.4.6", "numpy==2.4.5"), "requirements.lock is out of date"),
}


def test_every_check_has_a_failing_case() -> None:
    assert set(BREAK) == {c.__name__ for c in CHECKS}


def test_the_example_model_passes_every_check(monorepo: Path) -> None:
    findings = run_checks(ModelFolder(MODEL, monorepo / "models" / MODEL, monorepo))
    assert [f.id for f in findings if not f.passed] == []


@pytest.mark.parametrize("check_id", sorted(BREAK))
def test_each_problem_is_flagged_with_reason_and_fix(monorepo: Path, check_id: str) -> None:
    mutate, expected = BREAK[check_id]
    folder = monorepo / "models" / MODEL
    mutate(folder)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    (finding,) = [f for f in run_checks(ModelFolder(MODEL, folder, monorepo)) if f.id == check_id]
    assert not finding.passed
    assert expected in finding.reason and finding.fix
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before, "doctor changes nothing"


def test_cli_exit_codes(cli: Cli, monorepo: Path) -> None:
    result = cli("doctor", MODEL, "--skip-hooks").assert_success()
    assert "MC001" in result.out and "MC010" not in result.out
    _secret(monorepo / "models" / MODEL)
    result = cli("doctor", "--json", "--skip-hooks")
    assert result.code == 1
    report = json.loads(result.out)[MODEL]
    assert [f["id"] for f in report if not f["passed"]] == ["MC009"]


def _doctor_json(cli: Cli) -> dict[str, str]:
    """`modelctl doctor --json` on the example model (exit 1): each failed check's reason by id."""
    result = cli("doctor", MODEL, "--json", "--skip-hooks")
    assert result.code == 1, result.err
    return {f["id"]: f["reason"] for f in json.loads(result.out)[MODEL] if not f["passed"]}


def test_a_merge_key_bomb_is_refused_before_it_expands(cli: Cli, monorepo: Path) -> None:
    # Nine merges of the level below, eight levels: 43 million keys for a loader that expands merge keys
    # (46 s and 820 MB per read with yaml.safe_load on PyYAML 6.0.3, issue 20 item 12).
    lines = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 9)]
    config = monorepo / "models" / MODEL / "config.yaml"
    config.write_text(config.read_text() + "\n".join(lines) + "\n")
    failed = _doctor_json(cli)
    assert sorted(failed) == ["MC001", "MC002", "MC008"]
    assert all("YAML anchor &a0 is not allowed" in reason for reason in failed.values())


@pytest.mark.parametrize(
    ("loadtest", "failed", "expected"),
    [
        pytest.param(
            [1], ["MC001", "MC002", "MC008"], "config.yaml: loadtest: got a list; expected a mapping", id="list"
        ),
        pytest.param(
            "fast", ["MC001", "MC002", "MC008"], "config.yaml: loadtest: got a string; expected a mapping", id="string"
        ),
        pytest.param(
            {"max_p90_ms": 500, "max_error_rate": 0.01, "payload": 5},
            ["MC001", "MC008"],
            "config.yaml: loadtest.payload: got an integer; expected a file name",
            id="payload",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_a_failed_check_not_a_crash(
    cli: Cli, monorepo: Path, loadtest: object, failed: list[str], expected: str
) -> None:
    path = monorepo / "models" / MODEL / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["loadtest"] = loadtest
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    reasons = _doctor_json(cli)
    assert sorted(reasons) == failed
    assert "loadtest" in reasons["MC001"]
    assert all(expected in reasons[check] for check in failed if check != "MC001")


def test_links_are_named_but_never_followed(monorepo: Path) -> None:
    folder = monorepo / "models" / MODEL
    (folder / "disk").symlink_to("/")  # rglob would walk the whole disk if it followed links
    for name in "abcdef":
        (folder / "queries" / f"{name}.sql").symlink_to("../train.py")
    (finding,) = run_checks(ModelFolder(MODEL, folder, monorepo), checks=(MC011,))
    assert finding.reason == (
        "the model folder contains symlinks: disk -> /, queries/a.sql -> ../train.py, queries/b.sql -> ../train.py, "
        "queries/c.sql -> ../train.py, queries/d.sql -> ../train.py and 2 more"
    )
