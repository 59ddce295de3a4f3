"""The shared feature store's upkeep (`modelctl features materialize`; issue 21): apply the Feast repository and load
its online store, run in the platform's own Feast environment (``locks/feast.lock``, modelkit copied in), never a
model's. The work itself is ``modelkit.features`` (``python -m modelkit.features materialize``), which entity models
use to read features too; this module finds the repository, builds the environment and reports.

The child gets the allow-listed environment of model processes: ``MODEL_FEATURE_DATA`` and
``MODEL_FEATURE_ONLINE_STORE`` (a redis:// URL for Redis) reach it, deploy and store credentials do not.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from modelctl import cmd, platformenv
from modelctl.errors import ModelctlError
from modelctl.processenv import model_process_env
from modelkit.features import CONFIG_FILE, REPO_ENV, REPO_IN_MONOREPO

TIMEOUT_S = 1800.0
# Feast's own progress output (coloured headings, progress bars): modelctl prints its own lines instead.
_NOISE = ("\x1b", "Materializing ", "100%", "  0%")


class FeaturesError(ModelctlError):
    pass


def feast_env(shared: Path) -> platformenv.Spec:
    """The platform's Feast environment, with modelkit copied from ``shared`` (the monorepo's shared/ folder)."""
    return platformenv.Spec("feast", platformenv.LOCKS / "feast.lock", (("modelkit", shared / "src" / "modelkit"),))


def repo_path(root: Path, repo: Path | None) -> Path:
    """The feature repository: ``repo`` (relative to the current folder) or the monorepo's shared/feature_repo."""
    chosen = (repo if repo is not None else root / REPO_IN_MONOREPO).expanduser().resolve()
    if not chosen.is_dir():
        raise FeaturesError(f"feature repository {chosen} does not exist (--repo, default {REPO_IN_MONOREPO})")
    if not (chosen / CONFIG_FILE).is_file():
        raise FeaturesError(f"{chosen} is not a feature repository: it has no {CONFIG_FILE}")
    return chosen


def materialize(
    root: Path,
    state_root: Path,
    repo: Path | None = None,
    end: datetime | None = None,
    start: datetime | None = None,
    say: Callable[[str], None] = print,
) -> list[str]:
    """Apply ``repo`` and materialize every feature view up to ``end`` (default now); the lines of progress."""
    chosen = repo_path(root, repo)
    say("the platform's Feast environment (built once from locks/feast.lock: about 15 s)")
    python = platformenv.python(state_root, feast_env(root / "shared"))
    argv: list[str | Path] = [python, "-I", "-m", "modelkit.features", "materialize", "--repo", chosen]
    argv += ["--end", end.isoformat() if end is not None else "now"]
    if start is not None:
        argv += ["--start", start.isoformat()]
    say(f"materializing the feature repository {chosen}")
    result = cmd.run(
        argv,
        what="materializing features",
        env=model_process_env({REPO_ENV: str(chosen)}),
        cwd=root,
        timeout=TIMEOUT_S,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if line.strip() and not line.startswith(_NOISE)]
    for line in lines:
        say(line)
    if result.returncode != 0:
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        if errors:
            raise FeaturesError(errors[-1].removeprefix("error: "))
        raise FeaturesError(
            f"materializing features failed (exit {result.returncode}):\n{cmd.tail_of(result.stderr, 12)}"
        )
    return lines
