"""The reference a model version keeps of its training data (``reference.parquet`` in its BentoML store folder,
written by ``modelkit.training.save_reference`` when it was trained).

Read from the local BentoML store when the version is there; otherwise (a CI runner, another machine) from the
archive of the live bento in the state store (the ledger names it and its sha256): only that one member is read,
nothing is extracted or imported.
"""

from __future__ import annotations

import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from modelctl.errors import ModelctlError
from modelctl.state import State, split_tag
from modelkit import predlog

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]


class MissingReferenceError(ModelctlError):
    """The model version has no usable reference."""


def reference_path(bentoml_home: Path, model_tag: str) -> Path:
    name, version = split_tag(model_tag)
    return bentoml_home / "models" / name / version / predlog.REFERENCE_FILE


MAX_REFERENCE_BYTES = 512 << 20


def from_bento(state: State, bento: str, sha256: str | None, model_tag: str) -> bytes | None:
    """``reference.parquet`` of ``model_tag`` from the stored archive of ``bento``; None when the store has no
    archive of it or the archive has no reference."""
    if state.store.stat_file(State.artifact_key("bento", bento)) is None:
        return None
    name, version = split_tag(model_tag)
    wanted = f"models/{name}/{version}/{predlog.REFERENCE_FILE}"
    with tempfile.TemporaryDirectory(prefix="modelctl-reference-") as folder:
        path = Path(folder) / "live.bento"
        state.get_artifact("bento", bento, path, sha256=sha256)
        try:
            with tarfile.open(path) as archive:  # compression detected; members are read, never extracted
                for member in archive:
                    if member.isreg() and member.name.lstrip("./") == wanted and member.size <= MAX_REFERENCE_BYTES:
                        handle = archive.extractfile(member)
                        return None if handle is None else handle.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise MissingReferenceError(f"the stored archive of {bento} cannot be read ({exc})") from exc
    return None


def load(bentoml_home: Path, model_tag: str, fallback: Callable[[], bytes | None] | None = None) -> pa.Table:
    """The reference of ``model_tag``: from the local BentoML store, else from ``fallback`` (the stored bento)."""
    import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

    path = reference_path(bentoml_home, model_tag)
    if not path.is_file():
        data = fallback() if fallback is not None else None
        if data is not None:
            try:
                return pq.read_table(pa.BufferReader(data))
            except (pa.ArrowException, OSError) as exc:
                raise MissingReferenceError(
                    f"the reference of {model_tag} in its stored bento is not Parquet ({exc})"
                ) from exc
        if not path.parent.is_dir():
            raise MissingReferenceError(
                f"model version {model_tag} is not in the BentoML store {bentoml_home} and the state store has no "
                "archive of its live bento: run monitor where it was trained or deployed"
            )
        raise MissingReferenceError(
            f"{path} does not exist: {model_tag} was trained without a reference; retrain it (train.py must call "
            "modelkit.training.save_reference after model_io.save)"
        )
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise MissingReferenceError(f"{path}: not a readable Parquet file ({exc}); retrain {model_tag}") from exc
