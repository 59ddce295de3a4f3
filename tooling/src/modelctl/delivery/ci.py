"""What one CI job does for each model of its shard (`modelctl ci check|build|deploy|undeploy`).

Pull requests: doctor, the model's tests (beside training and building), load-test gate and fuzzing on one
started candidate. Merges: the same, then the verified bento is exported to ``dist/<model>.bento`` (with its
sha256); the deploy jobs deploy exactly those files.
"""

from __future__ import annotations

from pathlib import Path

from modelctl.delivery import build as building
from modelctl.delivery import release
from modelctl.delivery import train as training
from modelctl.delivery.promote import verify
from modelctl.delivery.stages import StageLog
from modelctl.delivery.testing import run_tests
from modelctl.doctor import ModelFolder, errors_of, run_checks
from modelctl.errors import ModelctlError
from modelctl.model import Model


class DoctorError(ModelctlError):
    pass


def _verified_bento(model: Model, log: StageLog) -> str:
    with log.stage("doctor") as stage:
        problems = errors_of(run_checks(ModelFolder(model.name, model.folder, model.repo.root)))
        if problems:
            raise DoctorError("doctor: " + "; ".join(problems))
        stage.detail = "MC001-MC010 ok"
    with log.stage("test") as stage:
        stage.detail = run_tests(model)
    with log.stage("train") as stage:
        stage.detail = training.train(model).model_tag
    with log.stage("build") as stage:
        bento = stage.detail = building.build(model).bento
    verified = verify(model, bento, log)
    return verified.bento


def check(model: Model) -> str:
    """Everything a pull request must pass for ``model``; one line of what passed."""
    log = StageLog(f"check {model.name}", ["doctor", "test", "train", "build", "load-test gate", "fuzz"])
    bento = _verified_bento(model, log)
    return f"{bento}: " + "; ".join(f"{s.name} {s.detail}" for s in log.stages if s.name in ("load-test gate", "fuzz"))


def build_verified(model: Model, out_dir: Path) -> str:
    """Check, then export the verified bento to ``out_dir/<model>.bento``; one line with its sha256."""
    log = StageLog(f"build {model.name}", ["doctor", "test", "train", "build", "load-test gate", "fuzz", "export"])
    bento = _verified_bento(model, log)
    with log.stage("export") as stage:
        path, digest = release.export(model, bento, out_dir / f"{model.name}.bento")
        stage.detail = f"{path.name} sha256={digest}"
    return f"{bento} -> {path.name} sha256={digest[:16]}..."


def deploy_file(model: Model, env: str, in_dir: Path) -> str:
    """Deploy ``in_dir/<model>.bento`` (checked) to ``env``; approval comes from the GitHub environment."""
    bento, digest = release.import_file(model, in_dir / f"{model.name}.bento")
    record = release.deploy(model, env, bento, approved=True, sha256=digest)
    return f"{record.outcome} {record.bento} v{record.version} {record.url or ''}".strip()


def undeploy(model: Model, env: str) -> str:
    record = release.undeploy(model, env)
    return f"undeployed {record.bento or '(nothing was live)'}"
