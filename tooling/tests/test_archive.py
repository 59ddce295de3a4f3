"""Exported bento archives: checked before import; hostile ones refused with nothing written anywhere.

Archives are real tar files in the layout `bentoml export` writes (``shutil.make_archive`` of the bento
folder: ``./bento.yaml``, ``./models/<name>/<version>/``, xz for ``.bento``); one slow test exports and
imports a real bento with BentoML 1.4.40.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from modelctl import archive
from modelctl.archive import ArchiveError, Limits

MODEL = "iris_classifier"
VERSION = "k3xq2mhf5cvbqaav"
MODEL_VERSION = "rwl5uphf5cl3oaav"


def bento_yaml(name: str = MODEL, version: str = VERSION, model_tag: str = f"{MODEL}:{MODEL_VERSION}") -> str:
    """A bento.yaml as BentoML 1.4.40 writes it (fields and order from a real export)."""
    info = {
        "service": "service:IrisClassifier",
        "name": name,
        "version": version,
        "bentoml_version": "1.4.40",
        "creation_time": "2026-11-27T08:52:48.023828+00:00",
        "labels": {"git_commit": "0123abcd", "owner": "ml-team"},
        "models": [],
        "entry_service": "IrisClassifier",
        "services": [
            {
                "name": "IrisClassifier",
                "service": "",
                "models": [
                    {"tag": model_tag, "module": "bentoml.sklearn", "creation_time": "2026-11-27T08:52:37+00:00"}
                ],
                "dependencies": [],
                "config": {},
            }
        ],
        "envs": [],
        "schema": {"name": "IrisClassifier", "type": "service", "routes": [{"name": "predict", "route": "/predict"}]},
        "args": {},
        "spec": 2,
    }
    return yaml.safe_dump(info, sort_keys=False)


def bento_folder(root: Path, **kwargs: str) -> Path:
    """A bento folder in BentoML's layout (what `bentoml export` archives)."""
    model_name, _, model_version = kwargs.get("model_tag", f"{MODEL}:{MODEL_VERSION}").partition(":")
    files = {
        "bento.yaml": bento_yaml(**kwargs),
        "README.md": "# iris\n",
        "apis/openapi.yaml": "openapi: 3.0.2\n",
        "apis/schema.json": "{}\n",
        "env/docker/Dockerfile": "FROM python:3.11-slim\n",
        "env/python/requirements.txt": "bentoml==1.4.40\n",
        f"models/{model_name}/{model_version}/model.yaml": yaml.safe_dump(
            {"name": model_name, "version": model_version, "module": "bentoml.sklearn"}
        ),
        f"models/{model_name}/{model_version}/saved_model.pkl": "not really a pickle",
        f"models/{model_name}/latest": model_version,
        "src/service.py": "import bentoml\n",
        "src/config.yaml": f"name: {MODEL}\n",
    }
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def export_like_bentoml(folder: Path, out: Path, fmt: str = "xztar") -> Path:
    """What `bentoml export` does (BentoML 1.4 ``Exportable._compress``): make_archive of the folder."""
    made = Path(shutil.make_archive(str(out.with_suffix("")) + "-tmp", fmt, str(folder)))
    return made.rename(out)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def with_extra(valid: Path, out: Path, extra: Callable[[tarfile.TarFile], None], mode: str = "w:xz") -> Path:
    """A copy of ``valid`` with hostile members appended by ``extra`` (exactly the members of a real export first)."""
    with tarfile.open(valid) as source, tarfile.open(out, mode) as target:  # type: ignore[call-overload]
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isreg() else None)
        extra(target)
    return out


def add_file(tar: tarfile.TarFile, name: str, data: bytes = b"pwned\n") -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def add_special(tar: tarfile.TarFile, name: str, kind: bytes, linkname: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 1, 3
    tar.addfile(info)


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its content (files) or its link target (links)."""
    result: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = str(path.relative_to(root))
        if path.is_symlink():
            result[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            result[key] = path.read_bytes()
        else:
            result[key] = "dir"
    return result


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    return export_like_bentoml(bento_folder(tmp_path / "bento"), tmp_path / "dist" / f"{MODEL}.bento")


# --- a good archive ------------------------------------------------------------------------------


def test_an_exported_bento_is_accepted_and_described(valid: Path) -> None:
    info = archive.inspect(valid, MODEL, digest(valid))
    assert info.tag == f"{MODEL}:{VERSION}" and (info.name, info.version) == (MODEL, VERSION)
    assert info.model_tag == f"{MODEL}:{MODEL_VERSION}" and info.model_tags == (f"{MODEL}:{MODEL_VERSION}",)
    assert info.sha256 == digest(valid) and info.size == valid.stat().st_size
    assert info.service == "IrisClassifier" and info.labels["git_commit"] == "0123abcd"
    assert info.compression == "xz" and info.members == 11 and info.routes == ("/predict",)


def test_the_layout_is_the_one_bentoml_export_writes(valid: Path) -> None:
    with tarfile.open(valid) as tar:
        names = tar.getnames()
    assert names[0] == "." and "./bento.yaml" in names and f"./models/{MODEL}/latest" in names


@pytest.mark.parametrize(("fmt", "compression", "suffix"), [("gztar", "gz", ".tar.gz"), ("tar", "", ".tar")])
def test_other_tar_compressions_are_accepted_and_the_copy_is_named_for_bentoml_import(
    tmp_path: Path, fmt: str, compression: str, suffix: str
) -> None:
    path = export_like_bentoml(bento_folder(tmp_path / "bento"), tmp_path / "m.bento", fmt)
    with archive.verified_copy(path, MODEL, digest(path), workdir=tmp_path) as (copy, info):
        assert info.compression == compression
        assert copy.name == f"{MODEL}-{VERSION}{suffix}" and copy.read_bytes() == path.read_bytes()
        assert copy.parent.stat().st_mode & 0o777 == 0o700
    assert not copy.exists()


def test_the_digest_may_be_given_with_a_prefix_or_in_upper_case(valid: Path) -> None:
    assert archive.inspect(valid, MODEL, "sha256:" + digest(valid).upper()).tag == f"{MODEL}:{VERSION}"


# --- digest ---------------------------------------------------------------------------------------


def test_a_different_digest_is_refused_before_the_archive_is_read(tmp_path: Path, valid: Path) -> None:
    # The digest of a good archive, the bytes of another: the archive is not even opened.
    other = tmp_path / "not-a-tar.bento"
    other.write_bytes(b"garbage")
    with pytest.raises(ArchiveError, match=f"has sha256 {digest(other)}, expected {digest(valid)}: not the archive"):
        archive.inspect(other, MODEL, digest(valid))


@pytest.mark.parametrize("expected", ["", "abc", "z" * 64, "sha1:" + "0" * 40])
def test_an_expected_digest_that_is_not_a_sha256_is_refused(valid: Path, expected: str) -> None:
    with pytest.raises(ArchiveError, match="is not a sha256"):
        archive.inspect(valid, MODEL, expected)


def test_a_fifo_in_place_of_the_archive_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.bento"
    os.mkfifo(fifo)
    with pytest.raises(ArchiveError, match="is not a regular file"):
        archive.inspect(fifo, MODEL, "0" * 64)
    with pytest.raises(ArchiveError, match="is not a regular file"), archive.verified_copy(fifo, MODEL, "0" * 64):
        pass


# --- hostile members: refused, nothing written outside --------------------------------------------

HOSTILE: dict[str, tuple[Callable[[tarfile.TarFile], None], str]] = {
    "dotdot member": (
        lambda t: add_file(t, "./../../victim/pwned.txt"),
        r"member '\./\.\./\.\./victim/pwned.txt' has a '\.\.' component",
    ),
    "dotdot inside": (lambda t: add_file(t, "./src/../../victim/pwned.txt"), "has a '..' component"),
    "absolute member": (lambda t: add_file(t, "/tmp/modelctl-victim/pwned.txt"), "is an absolute path"),
    "symlink member": (
        lambda t: add_special(t, "./src/escape", tarfile.SYMTYPE, "../../../victim"),
        r"member './src/escape' is a symbolic link \(to '../../../victim'\)",
    ),
    "symlink inside": (lambda t: add_special(t, "./src/ok", tarfile.SYMTYPE, "service.py"), "is a symbolic link"),
    "hardlink member": (
        lambda t: add_special(t, "./src/hard", tarfile.LNKTYPE, "../../victim/pwned.txt"),
        "is a hard link",
    ),
    "character device": (lambda t: add_special(t, "./src/null", tarfile.CHRTYPE), "is a character device"),
    "block device": (lambda t: add_special(t, "./src/disk", tarfile.BLKTYPE), "is a block device"),
    "fifo member": (lambda t: add_special(t, "./src/pipe", tarfile.FIFOTYPE), "is a FIFO"),
    "backslash member": (lambda t: add_file(t, "..\\..\\victim\\pwned.txt"), "has a backslash"),
    "control character": (lambda t: add_file(t, "./src/a\nb"), "control character"),
    "duplicate bento.yaml": (
        lambda t: add_file(t, "bento.yaml", bento_yaml(version="../../../../tmp/evil").encode()),
        "member 'bento.yaml' appears twice",
    ),
    "file over folder": (lambda t: add_file(t, "./src/service.py/x.py"), "is both a file and a folder"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_members_are_refused_with_nothing_written_outside(tmp_path: Path, valid: Path, case: str) -> None:
    extra, message = HOSTILE[case]
    hostile = with_extra(valid, tmp_path / "dist" / f"{case.replace(' ', '_')}.bento", extra)
    (tmp_path / "victim").mkdir()
    (tmp_path / "work").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match=message) as refused:
        archive.inspect(hostile, MODEL, digest(hostile))
    assert str(hostile) in str(refused.value)
    with (
        pytest.raises(ArchiveError, match=message),
        archive.verified_copy(hostile, MODEL, digest(hostile), workdir=tmp_path / "work"),
    ):
        pytest.fail("a hostile archive must not be handed out")
    # The import never starts (the python does not even exist) and nothing was written anywhere.
    with pytest.raises(ArchiveError, match=message):
        archive.import_bento(
            Path("/nonexistent/python"), hostile, MODEL, digest(hostile), env={"BENTOML_HOME": str(tmp_path / "home")}
        )
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/modelctl-victim").exists()


# --- forged and foreign tags ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        ("x", "../../../../tmp/evil", r"bento.yaml version '../../../../tmp/evil' is not a plain name"),
        (MODEL, "../../../../tmp/evil", r"bento.yaml version '../../../../tmp/evil' is not a plain name"),
        (MODEL, "..", "is not a plain name"),
        (MODEL, "a/b", "is not a plain name"),
        (MODEL, "", "is not a plain name"),
        ("../iris_classifier", VERSION, "bento.yaml name '../iris_classifier' is not a plain name"),
        ("churn_model", VERSION, "bento.yaml names the bento 'churn_model', not 'iris_classifier'"),
    ],
)
def test_forged_and_foreign_tags_are_refused(tmp_path: Path, name: str, version: str, message: str) -> None:
    path = export_like_bentoml(bento_folder(tmp_path / "bento", name=name, version=version), tmp_path / "x.bento")
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match=message):
        archive.inspect(path, MODEL, digest(path))
    assert snapshot(tmp_path) == before


def test_a_model_tag_with_a_path_in_it_is_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    info = yaml.safe_load((folder / "bento.yaml").read_text())
    info["services"][0]["models"][0]["tag"] = f"{MODEL}:../../evil"
    (folder / "bento.yaml").write_text(yaml.safe_dump(info))
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match="bento.yaml model tag .* version '../../evil' is not a plain name"):
        archive.inspect(path, MODEL, digest(path))


def test_a_latest_pointer_with_a_path_in_it_is_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    (folder / "models" / MODEL / "latest").write_text("../../../etc")
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match="models/iris_classifier/latest points to '../../../etc'"):
        archive.inspect(path, MODEL, digest(path))


def test_a_model_yaml_that_disagrees_with_its_folder_is_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    (folder / "models" / MODEL / MODEL_VERSION / "model.yaml").write_text("name: iris_classifier\nversion: other\n")
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match="model.yaml says 'iris_classifier':'other', not its folder's"):
        archive.inspect(path, MODEL, digest(path))


def test_a_listed_model_missing_from_the_archive_is_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    shutil.rmtree(folder / "models")
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match=f"lists model {MODEL}:{MODEL_VERSION} but the archive has no models/"):
        archive.inspect(path, MODEL, digest(path))


def test_yaml_aliases_in_bento_yaml_are_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    (folder / "bento.yaml").write_text(bento_yaml() + "a: &a [1, 2]\nb: [*a, *a]\n")
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match="bento.yaml uses a YAML alias"):
        archive.inspect(path, MODEL, digest(path))


def test_an_archive_without_bento_yaml_is_refused(tmp_path: Path) -> None:
    folder = bento_folder(tmp_path / "bento")
    (folder / "bento.yaml").unlink()
    path = export_like_bentoml(folder, tmp_path / "x.bento")
    with pytest.raises(ArchiveError, match="has no bento.yaml at its root"):
        archive.inspect(path, MODEL, digest(path))


# --- sizes and formats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        (Limits(max_members=5), "has more than 5 members"),
        (Limits(max_member_bytes=10), r"bytes \(limit 10\)"),
        (Limits(max_total_bytes=100), "unpacks to more than 100 bytes"),
        (Limits(max_file_bytes=100), "more than the limit of 100"),
        (Limits(max_metadata_bytes=50), "too large for metadata"),
    ],
)
def test_size_limits(valid: Path, limits: Limits, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        archive.inspect(valid, MODEL, digest(valid), limits=limits)


def test_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.bento"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("bento.yaml", bento_yaml())
    with pytest.raises(ArchiveError, match="is a zip file"):
        archive.inspect(path, MODEL, digest(path))


def test_a_truncated_archive_is_refused(tmp_path: Path, valid: Path) -> None:
    cut = tmp_path / "cut.bento"
    cut.write_bytes(valid.read_bytes()[: valid.stat().st_size // 2])
    with pytest.raises(ArchiveError, match="is not a readable tar archive"):
        archive.inspect(cut, MODEL, digest(cut))


# --- tags from anywhere -----------------------------------------------------------------------------


def test_check_tag() -> None:
    assert archive.check_tag(f"{MODEL}:{VERSION}", MODEL) == f"{MODEL}:{VERSION}"
    for forged in ("x:../../../../tmp/evil", f"{MODEL}:../x", f"{MODEL}", f"{MODEL}:a:b", f"{MODEL}:.hidden"):
        with pytest.raises(ArchiveError, match="not a plain name|not of the form"):
            archive.check_tag(forged, MODEL)
    with pytest.raises(ArchiveError, match="is not a bento of iris_classifier"):
        archive.check_tag("churn_model:abc", MODEL)


# --- a real BentoML 1.4 export and import ---------------------------------------------------------

SERVICE = """\
import bentoml
from bentoml.models import BentoModel


@bentoml.service
class Tiny:
    model = BentoModel("tiny_model:latest")

    @bentoml.api
    def predict(self, x: float) -> float:
        return x * 2
"""
BENTOFILE = 'service: "service:Tiny"\nname: tiny_model\ninclude: ["service.py"]\npython:\n  lock_packages: false\n'
SAVE_MODEL = """\
import bentoml
with bentoml.models.create("tiny_model") as m:
    open(m.path + "/weights.txt", "w").write("2")
"""


@pytest.fixture(scope="module")
def bentoml_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A throwaway environment with BentoML 1.4.40 (uv: seconds with a warm cache)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is a modelctl dependency"
    venv = tmp_path_factory.mktemp("bentoml-env") / "venv"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    python = venv / "bin" / "python"
    # bentoml build installs its python requirements with uv/pip from inside the environment.
    subprocess.run([uv, "pip", "install", "-q", "--python", str(python), "bentoml==1.4.40", "uv", "pip"], check=True)
    return python


@pytest.mark.slow
def test_a_real_bentoml_export_is_accepted_and_imported(tmp_path: Path, bentoml_python: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "service.py").write_text(SERVICE)
    (project / "bentofile.yaml").write_text(BENTOFILE)
    build_home = tmp_path / "build-home"
    env = {**os.environ, "BENTOML_HOME": str(build_home), "BENTOML_DO_NOT_TRACK": "true"}

    def bentoml(*args: str, home: Path = build_home) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bentoml_python), "-m", "bentoml", *args],
            cwd=project,
            env={**env, "BENTOML_HOME": str(home)},
            capture_output=True,
            text=True,
            check=True,
        )

    subprocess.run([str(bentoml_python), "-c", SAVE_MODEL], env=env, check=True)
    bentoml("build")
    tag = json.loads(bentoml("list", "-o", "json").stdout)[0]["tag"]
    exported = tmp_path / "dist" / "tiny_model.bento"
    exported.parent.mkdir()
    bentoml("export", tag, str(exported))

    info = archive.inspect(exported, "tiny_model", digest(exported))
    assert info.tag == tag and info.compression == "xz" and info.service == "Tiny" and info.routes == ("/predict",)
    assert info.model_tag is not None and info.model_tag.startswith("tiny_model:")

    deploy_home = tmp_path / "deploy-home"
    imported = archive.import_bento(
        bentoml_python, exported, "tiny_model", digest(exported), env={**env, "BENTOML_HOME": str(deploy_home)}
    )
    assert imported.tag == tag
    assert (deploy_home / "bentos" / "tiny_model" / info.version / "bento.yaml").is_file()
    # Importing the same archive again is fine (the store already holds exactly that bento).
    again = archive.import_bento(
        bentoml_python, exported, "tiny_model", digest(exported), env={**env, "BENTOML_HOME": str(deploy_home)}
    )
    assert again.tag == tag

    # The same real export with one `..` member: refused before bentoml ever sees it.
    hostile = with_extra(exported, tmp_path / "dist" / "hostile.bento", lambda t: add_file(t, "./../../pwned.txt"))
    before = snapshot(tmp_path)
    with pytest.raises(ArchiveError, match="has a '..' component"):
        archive.import_bento(
            bentoml_python, hostile, "tiny_model", digest(hostile), env={**env, "BENTOML_HOME": str(deploy_home)}
        )
    assert snapshot(tmp_path) == before
