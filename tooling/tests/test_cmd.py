"""The one subprocess helper: every failure reads the same (command, exit code, output tail)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from modelctl import cmd
from modelctl.errors import ModelctlError


def test_success_captures_output() -> None:
    result = cmd.run([sys.executable, "-c", "print('a'); print('{\"x\": 1}')"], what="a script")
    assert result.returncode == 0 and result.stdout.splitlines() == ["a", '{"x": 1}']
    assert result.last_json_line() == '{"x": 1}'


def test_failure_names_what_the_command_and_the_tail() -> None:
    script = "import sys\nfor i in range(40): print(f'line {i}', file=sys.stderr)\nsys.exit(3)"
    with pytest.raises(cmd.CommandError) as info:
        cmd.run([sys.executable, "-c", script], what="the thing")
    message = str(info.value)
    assert message.startswith("the thing (python") and " exited 3:" in message
    assert "line 39" in message and "line 10" not in message, "only the tail"
    assert info.value.returncode == 3 and isinstance(info.value, ModelctlError)


def test_missing_program_and_timeout() -> None:
    with pytest.raises(cmd.CommandError, match="(?s)exited 127.*not found on PATH"):
        cmd.run(["definitely-not-a-program-xyz"], what="a missing tool")
    with pytest.raises(cmd.CommandError, match="(?s)after 0s.* timed out"):
        cmd.run([sys.executable, "-c", "import time; time.sleep(5)"], what="a sleeper", timeout=0.3)


def test_unchecked_returns_the_exit_code(tmp_path: Path) -> None:
    result = cmd.run([sys.executable, "-c", "import sys; sys.exit(4)"], cwd=tmp_path, check=False)
    assert result.returncode == 4


def test_bytes_helper() -> None:
    assert cmd.run_bytes([sys.executable, "-c", "import sys; sys.stdout.buffer.write(b'\\xff')"], what="b") == b"\xff"
    with pytest.raises(cmd.CommandError, match="exited 2"):
        cmd.run_bytes([sys.executable, "-c", "import sys; sys.exit(2)"], what="b")
