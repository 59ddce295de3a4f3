"""The modelkit.testing plugin's mechanics, in pytest subprocesses over a stand-in model folder.

The contract itself runs against real baked models (cookiecutter-model/tests, the model tox envs).
"""

from __future__ import annotations

from pathlib import Path

import pytest

CONFIG = "name: toy\ndescription: d\nowner: team\nframework: sklearn\n"
OWN_TEST = """
import os
from pathlib import Path


def test_fixtures(model_dir, model_config, sample):
    Path(os.environ["SEEN"]).write_text(os.environ["BENTOML_HOME"])
    assert model_dir == Path(__file__).resolve().parents[1]
    assert model_config.name == "toy" and sample["instances"]
    import helper  # the model folder is importable, like train.py and service.py

    assert helper.VALUE == 1
"""


@pytest.fixture
def model(pytester: pytest.Pytester) -> Path:
    folder = pytester.path / "toy"
    (folder / "tests").mkdir(parents=True)
    (folder / "config.yaml").write_text(CONFIG)
    (folder / "sample_request.json").write_text('{"instances": [{"a": 1}]}')
    (folder / "helper.py").write_text("VALUE = 1\n")
    (folder / "tests" / "conftest.py").write_text('pytest_plugins = ["modelkit.testing"]\n')
    (folder / "tests" / "test_own.py").write_text(OWN_TEST)
    return folder


def test_one_line_collects_the_contract_beside_the_models_own_tests(pytester: pytest.Pytester, model: Path) -> None:
    result = pytester.runpytest_subprocess("--collect-only", "-q", str(model / "tests"))
    collected = result.stdout.str()
    assert "tests/conftest.py::test_sample_request_is_answered" in collected
    assert "tests/conftest.py::test_many_errors_get_a_small_answer_naming_each_unknown_key_once" in collected
    assert "tests/conftest.py::test_notebook_executes_top_to_bottom" in collected
    assert "tests/test_own.py::test_fixtures" in collected


def test_fixtures_and_a_private_bentoml_home_removed_afterwards(
    pytester: pytest.Pytester, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = pytester.path / "seen.txt"
    monkeypatch.setenv("SEEN", str(seen))
    monkeypatch.delenv("MODEL_TESTS_KEEP_BENTOML_HOME", raising=False)
    pytester.chdir()
    result = pytester.runpytest_subprocess(str(model / "tests" / "test_own.py"))
    result.assert_outcomes(passed=1)
    home = Path(seen.read_text())
    assert home.name.startswith("bentoml-test-") and not home.exists()


def test_a_folder_without_config_yaml_is_a_usage_error(pytester: pytest.Pytester, model: Path) -> None:
    (model / "config.yaml").unlink()
    result = pytester.runpytest_subprocess(str(model / "tests"))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "no model folder (with config.yaml)" in result.stderr.str()
