"""A model of the monorepo, resolved once per command: its folder, validated config and environment."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelctl import cmd, envs, procs
from modelctl.errors import UsageError
from modelctl.processenv import model_process_env
from modelkit import ModelConfig

#: The owner marker of every process that runs a model's code (`Model.run`), per modelctl process.
MODEL_CODE_OWNER = f"model-code-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def stop_leftovers() -> int:
    """Stop every process a model's code started and left running (found by its owner marker); how many. Called
    before modelctl hands results on (a hand-off file, an export), so nothing the model left can rewrite them."""
    return len(procs.stop_tree([], owner=MODEL_CODE_OWNER, timeout=5))


if TYPE_CHECKING:
    from modelctl.repo import Repo


@dataclass(frozen=True)
class Model:
    repo: Repo
    name: str
    config: ModelConfig

    @property
    def folder(self) -> Path:
        return self.repo.model_dir(self.name)

    def relative(self, path: str = "") -> str:
        """``models/<name>/<path>`` for messages."""
        return f"models/{self.name}/{path}".rstrip("/")

    def python(self) -> Path:
        """The interpreter of the model's own environment (created or updated by tox once per process)."""
        return envs.python_of(self.repo.root, self.name, self.folder)

    @property
    def data_url_variable(self) -> str:
        """The environment variable the template's `load_data()` reads its SQLAlchemy URL from."""
        return f"{self.name.upper()}_DATA_URL"

    def run(
        self,
        args: Sequence[str | Path],
        *,
        what: str,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        check: bool = True,
        on_start: Callable[[int], None] | None = None,
    ) -> cmd.Completed:
        """``python ARGS`` in the model's environment, from its folder, with only what a model's code may see.
        ``on_start`` gets the pid once it runs (see `cmd.run`)."""
        python = self.python()
        # Marked (procs.OWNER_ENV): what this code leaves running (a double-forked daemon) is found and stopped by
        # `stop_leftovers` before modelctl hands anything on.
        marked = {procs.OWNER_ENV: MODEL_CODE_OWNER, **(env or {})}
        return cmd.run(
            [python, *args],
            what=what,
            cwd=self.folder,
            env=model_process_env(marked, data_url=self.data_url_variable, python=python),
            timeout=timeout,
            check=check,
            on_start=on_start,
        )

    def sample(self) -> dict[str, Any]:
        """The load-test payload (`loadtest.payload`): a valid request body for POST /predict."""
        path = self.folder / self.config.loadtest.payload
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UsageError(
                f"{self.relative(self.config.loadtest.payload)} is not a readable JSON request: {exc}"
            ) from exc
        if not isinstance(data, dict) or not isinstance(data.get("instances"), list) or not data["instances"]:
            raise UsageError(f'{self.relative(self.config.loadtest.payload)} must be {{"instances": [<row>, ...]}}')
        return data

    def port(self, env: str) -> int:
        return self.config.port(env)
