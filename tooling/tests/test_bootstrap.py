"""`make bootstrap` installs only from files with hashes, and they say what requirements-dev.txt asks for."""

from __future__ import annotations

import re

from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)(\[[^\]]*\])?==(\S+)", re.MULTILINE)


def pins(text: str) -> dict[str, str]:
    return {m.group(1).lower().replace("_", "-"): m.group(3) for m in PIN.finditer(text)}


def test_the_lock_has_every_pin_of_requirements_dev_at_the_same_version_with_hashes() -> None:
    wanted = pins((ROOT / "tooling/requirements-dev.txt").read_text())
    lock = (ROOT / "tooling/requirements.lock").read_text()
    locked = pins(lock)
    assert wanted and {name: locked.get(name) for name in wanted} == wanted, "regenerate tooling/requirements.lock"
    entries = [block for block in re.split(r"\n(?=[A-Za-z0-9])", lock) if PIN.match(block)]
    assert entries and all("--hash=sha256:" in block for block in entries), "every locked package has hashes"
    assert len(locked) > len(wanted), "transitive dependencies are locked too"


def test_bootstrap_installs_with_hashes_only() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [line.strip() for line in makefile.splitlines() if "pip install" in line]
    assert installs, "bootstrap installs something"
    for line in installs:
        assert "--require-hashes" in line or "--no-deps -e shared -e tooling" in line, line
    uv_pin = pins((ROOT / "tooling/requirements-dev.txt").read_text())["uv"]
    assert pins((ROOT / "tooling/bootstrap.lock").read_text()) == {"uv": uv_pin}
