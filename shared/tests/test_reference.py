"""The reference a new model version keeps of its training data (modelkit.training.save_reference)."""

from __future__ import annotations

from pathlib import Path

import bentoml
import numpy as np
import pyarrow.parquet as pq
import pytest

from modelkit import predlog
from modelkit.training import reference_table, save_reference

NAMES = ("a", "b")
CLASSES = ("no", "yes")


def test_the_reference_is_written_into_the_model_version_folder() -> None:
    with bentoml.models.create("reference_toy") as stored:
        (Path(stored.path) / "weights.txt").write_text("1")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(300, 2))
    probabilities = np.column_stack([np.full(300, 0.25), np.full(300, 0.75)])
    path = save_reference(
        str(stored.tag), features, probabilities, names=NAMES, classes=CLASSES, target=np.array([0, 1] * 150), rows=100
    )
    assert path == Path(bentoml.models.get(stored.tag).path) / predlog.REFERENCE_FILE
    table = pq.read_table(path)
    assert table.num_rows == 100
    assert set(table.column_names) == {"feature.a", "feature.b", "prediction.label", "prediction.confidence", "label"}
    assert set(table.column("prediction.label").to_pylist()) == {"yes"}
    assert set(table.column("label").to_pylist()) == {"no", "yes"}
    assert table.schema.metadata[predlog.ROWS_META] == b"300"
    # a uniform sample of the rows, not the first ones
    assert set(table.column("feature.a").to_pylist()) <= set(features[:, 0].tolist())
    assert max(features[:, 0].tolist().index(v) for v in table.column("feature.a").to_pylist()) > 150


def test_fields_the_config_marks_sensitive_are_left_out_of_the_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Training runs from the model's folder: monitor.sensitive there (hash or drop) keeps the field out."""
    (tmp_path / "config.yaml").write_text(
        "name: m\ndescription: d\nowner: o\nframework: sklearn\nmonitor: {sensitive: {email: hash}}\n"
    )
    monkeypatch.chdir(tmp_path)
    with bentoml.models.create("reference_private") as stored:
        (Path(stored.path) / "weights.txt").write_text("1")
    rows = [{"email": f"user{i}@example.com", "age": float(i)} for i in range(50)]
    path = save_reference(str(stored.tag), rows, np.column_stack([np.full(50, 0.4), np.full(50, 0.6)]), classes=CLASSES)
    table = pq.read_table(path)
    assert "feature.age" in table.column_names
    assert not [c for c in table.column_names if "email" in c], table.column_names


def test_request_rows_get_the_log_s_columns_and_a_mismatch_is_named() -> None:
    rows = [{"text": "hello world", "n": 3}, {"text": "hi", "n": 4}]
    table = reference_table(rows, np.array([1.0, 2.0]))
    assert table.column("feature.text.length").to_pylist() == [11.0, 2.0]
    assert table.column("prediction.value").to_pylist() == [1.0, 2.0]
    with pytest.raises(ValueError, match=r"shape \(2, 3\); expected \(rows, 2\)"):
        reference_table(np.zeros((2, 3)), np.zeros(2), names=NAMES)
    with pytest.raises(ValueError, match="target has 1 values for 2 rows"):
        reference_table(rows, np.zeros(2), target=[1])
