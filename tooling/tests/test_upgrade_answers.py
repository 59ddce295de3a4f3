"""`upgrade.infer_answers` (what `modelctl upgrade --adopt` records) reads config.yaml as load_config does: anchors and
aliases are refused with an error naming the file, before anything expands them (issue 20 item 12)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from modelctl.upgrade import UpgradeError, infer_answers

CONFIG = "name: churn\ndescription: Who leaves\nowner: retention\nframework: xgboost\ntask: classification\n"


def model(tmp_path: Path, config: str) -> Path:
    folder = tmp_path / "models" / "churn"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(config, encoding="utf-8")
    (folder / "README.md").write_text("# Churn Model\n", encoding="utf-8")
    return folder


def test_the_answers_come_from_config_yaml_and_the_readme(tmp_path: Path) -> None:
    assert infer_answers(model(tmp_path, CONFIG + "serving: {workers: 2}\n")) == {
        "model_name": "Churn Model",
        "model_slug": "churn",
        "description": "Who leaves",
        "owner": "retention",
        "framework": "xgboost",
        "task": "classification",
    }


def test_an_anchor_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    folder = model(tmp_path, CONFIG + "team: &team retention\nalso: *team\n")
    path = re.escape(str(folder / "config.yaml"))
    with pytest.raises(UpgradeError, match=f"^cannot read the answers from {path}:6: YAML anchor &team is not allowed"):
        infer_answers(folder)


def test_a_merge_key_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    # CSafeLoader spends seconds on 7 levels and 46 s with 820 MB on 8; the anchor is refused at once.
    lines = ["a0: &a0 {k: v}"] + [f"a{i}: &a{i} {{<<: [{', '.join([f'*a{i - 1}'] * 9)}]}}" for i in range(1, 8)]
    folder = model(tmp_path, CONFIG + "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(UpgradeError, match="config.yaml:6: YAML anchor &a0 is not allowed"):
        infer_answers(folder)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("- name: churn\n", "config.yaml: expected a mapping"),
        ("name: [churn\n", "config.yaml:2: invalid YAML"),
        ("name: other\n", "config.yaml: name 'other' is not the folder name 'churn'"),
    ],
    ids=["list", "invalid", "misnamed"],
)
def test_an_unusable_config_names_the_file(tmp_path: Path, config: str, expected: str) -> None:
    with pytest.raises(UpgradeError, match=re.escape(expected)):
        infer_answers(model(tmp_path, config))
