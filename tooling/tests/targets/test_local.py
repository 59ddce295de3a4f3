"""The local target's own progress lines are masked: a server that logs its data URL and dies does not leak the
password when a deploy fails and the previous version cannot be restored either (issue 20 item 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelctl import bentos, procs
from modelctl.repo import Repo
from modelctl.targets import local

URL = "postgresql://ml:S3cr/etPw@db/iris"  # pragma: allowlist secret
MODEL = "iris_classifier"


def test_a_failed_restore_never_prints_the_password_its_server_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    repo = Repo(root)
    # The previous version's server, as much of it as this needs: it logs why it cannot start, then exits.
    monkeypatch.setattr(bentos, "model_python", lambda _repo, _model: tmp_path / "env" / "bin" / "python")
    server = ["/bin/sh", "-c", f"echo 'sqlalchemy.exc.OperationalError: cannot connect to {URL}'; exit 1"]
    monkeypatch.setattr(bentos, "serve_command", lambda _python, _bento, _port: server)
    log = tmp_path / "server.log"
    previous = local.Live(f"{MODEL}:previous", procs.free_port(), str(log), 0.0, procs.Identity(1, 0.0, ()))

    assert local._restore(repo, MODEL, "staging", previous, {}) is False  # noqa: SLF001

    err = capsys.readouterr().err
    assert f"could not restore {MODEL}:previous: the server exited before it became ready" in err, err
    assert "OperationalError: cannot connect to postgresql://ml:***@db/iris" in err
    assert "S3cr" not in err and "etPw" not in err
    assert URL in log.read_text(), "the log itself is the model's: it keeps what the server wrote"
    assert local.read_live(repo, MODEL, "staging") is None
