"""Train and build in the model's own environment; bentos pin their model and carry their labels."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelctl import cmd
from modelctl.delivery import build, train
from modelctl.main import main
from modelctl.repo import Repo
from modelctl.state import State
from tests.conftest import MODEL, git

pytestmark = pytest.mark.slow


def test_build_before_training_says_to_train(
    delivery: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELCTL_STATE_DIR", str(tmp_path / "empty-state"))
    with pytest.raises(build.BuildError, match=f"no trained model '{MODEL}'.*run `modelctl train {MODEL}` first"):
        build.build(delivery.model(MODEL))
    assert main(["build", MODEL]) == 1
    assert not (delivery.model_dir(MODEL) / build.BUILD_DIR).exists(), "build leftovers are removed"


def test_train_then_build_pins_the_model_and_labels_the_bento(delivery: Repo) -> None:
    model = delivery.model(MODEL)
    trained = train.train(model)
    assert trained.model_tag.startswith(f"{MODEL}:") and trained.metrics["accuracy"] > 0.85
    built = build.build(model)
    assert built.model_tag == trained.model_tag
    info = yaml.safe_load(
        (State.of(delivery).bentoml_home / "bentos" / MODEL / built.bento.split(":")[1] / "bento.yaml").read_text()
    )
    labels = info["labels"]
    assert labels["git_commit"] == git(delivery.root, "rev-parse", "HEAD").strip()
    assert (labels["framework"], labels["task"]) == ("sklearn", "classification")
    assert not (model.folder / build.BUILD_DIR).exists(), "build leftovers are removed"

    # What ships is what the gate runs: the bento's requirements are the environment's exact versions, hashed.
    bento_dir = State.of(delivery).bentoml_home / "bentos" / MODEL / built.bento.split(":")[1]
    shipped = (bento_dir / "env" / "python" / "requirements.txt").read_text()
    from uv import find_uv_bin

    environment = cmd.run([find_uv_bin(), "pip", "freeze", "--python", model.python()], what="uv pip freeze").stdout
    versions = dict(line.lower().split("==", 1) for line in environment.splitlines() if "==" in line)
    pins = [line.split()[0] for line in shipped.splitlines() if "==" in line and not line.startswith(" ")]
    assert len(pins) > 20 and "--hash=sha256:" in shipped and labels["dependency_hashes"] == "true"
    for pin in pins:
        name, version = pin.lower().split("==", 1)
        assert versions.get(name.replace("_", "-"), versions.get(name)) == version, pin
    older = build.build(model, model_tag=trained.model_tag)
    assert older.model_tag == trained.model_tag


def test_a_broken_train_script_fails_with_its_error(delivery: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    path = delivery.model_dir(MODEL) / "train.py"
    original = path.read_text()
    path.write_text(original + "\nraise SystemExit('the data is gone')\n")
    try:
        assert main(["train", MODEL]) == 1
    finally:
        path.write_text(original)
    err = capsys.readouterr().err
    assert "models/iris_classifier/train.py (python train.py) exited 1" in err and "the data is gone" in err


def test_compiled_requirements_are_split_into_entries_with_their_hashes() -> None:
    text = "# comment\na==1 \\\n    --hash=sha256:aa\nmodelkit @ file:///x.whl \\\n    --hash=sha256:bb\n\nb==2\n"
    blocks = build._requirement_blocks(text)  # noqa: SLF001
    assert blocks == [
        "a==1 \\\n    --hash=sha256:aa\n",
        "modelkit @ file:///x.whl \\\n    --hash=sha256:bb\n",
        "b==2\n",
    ]
    assert build._pinned_closure("x==1\n", "a==1\n-e /src\n") == "x==1\na==1\n"  # noqa: SLF001
