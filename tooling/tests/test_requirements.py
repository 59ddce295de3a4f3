"""One reading of requirements files for tox, build and doctor."""

from __future__ import annotations

from pathlib import Path

from modelctl import requirements


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_kinds_includes_and_absolute_paths(tmp_path: Path) -> None:
    model = tmp_path / "models" / "m"
    write(model / "base.txt", "numpy==2.4.6  # pinned\nscikit-learn>=1.5\n")
    dev = write(
        model / "requirements-dev.txt",
        "-r base.txt\n-e ../../shared\n-e git+https://github.com/acme/lib.git#egg=lib\n"
        "../../wheels/x.whl\nhttps://example.com/pkg.tar.gz\nname @ https://example.com/n.whl\n--index-url https://i\n",
    )
    lines = requirements.read(dev)
    assert [(line.kind, line.target) for line in lines] == [
        ("package", "numpy==2.4.6"),
        ("package", "scikit-learn>=1.5"),
        ("editable", "../../shared"),
        ("editable", "git+https://github.com/acme/lib.git#egg=lib"),
        ("path", "../../wheels/x.whl"),
        ("url", "https://example.com/pkg.tar.gz"),
        ("package", "name @ https://example.com/n.whl"),
        ("option", "--index-url https://i"),
    ]
    assert [line.is_local for line in lines] == [False, False, True, False, True, False, False, False]
    assert requirements.absolute(lines[2]) == f"-e {tmp_path / 'shared'}", "relative to the file, not the cwd"
    assert requirements.absolute(lines[4]) == str(tmp_path / "wheels" / "x.whl")
    assert lines[0].source.name == "base.txt"


def test_pins_behind_includes_are_checked(tmp_path: Path) -> None:
    write(tmp_path / "base.txt", "bentoml==1.4.40\nscikit-learn>=1.5\nrequests\n")
    lines = requirements.read(write(tmp_path / "requirements.txt", "-r base.txt\n-e ../shared\n"))
    assert [line.text for line in lines if not line.pinned] == ["scikit-learn>=1.5", "requests"]


def test_bento_keeps_remote_editables_and_drops_local_paths(tmp_path: Path) -> None:
    lines = requirements.read(
        write(tmp_path / "r.txt", "bentoml==1.4.40\n-e ../../shared\n-e git+https://github.com/a/b.git#egg=b\n./x\n")
    )
    assert requirements.for_bento(lines) == "bentoml==1.4.40\ngit+https://github.com/a/b.git#egg=b\n"


def test_uses_shared(tmp_path: Path) -> None:
    assert requirements.uses_shared_text("-e ../../shared\n")
    assert requirements.uses_shared_text("modelkit==0.1\n") and requirements.uses_shared_text("../../shared/\n")
    assert not requirements.uses_shared_text("bentoml==1.4\n# -e ../../shared\n")
    assert not requirements.uses_shared_text("sharedlib==1\n-e git+https://x/shared\n")


def test_include_cycle_is_an_error(tmp_path: Path) -> None:
    import pytest

    write(tmp_path / "a.txt", "-r b.txt\n")
    write(tmp_path / "b.txt", "-r a.txt\n")
    with pytest.raises(ValueError, match="include themselves"):
        requirements.read(tmp_path / "a.txt")
