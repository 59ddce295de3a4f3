"""`modelctl doctor --help` and CI's doctor stage name the checks from the check list itself, so a new check can
never be missing from them again (MC011 was, issue 20)."""

from __future__ import annotations

import pytest

from modelctl.doctor import CHECKS, MC001, MC010, MC011, check_range
from modelctl.main import main


def test_the_help_names_every_check_and_the_whole_range(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["doctor", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    assert f"Checks {CHECKS[0].__name__}-{CHECKS[-1].__name__}: " in text
    for check in CHECKS:
        assert f"{check.__name__} {check.__doc__}" in text, check.__name__
    assert "MC011 the model folder holds no symlinks" in text


@pytest.mark.parametrize(
    ("checks", "expected"),
    [((MC001, MC010, MC011), "MC001-MC011"), ((MC001,), "MC001"), ((MC010, MC011), "MC010-MC011")],
)
def test_the_range_is_the_first_and_last_id(checks: tuple[type, ...], expected: str) -> None:
    assert check_range(checks) == expected
