"""Local ports are per model: two models that share a dev, staging or production port cannot both run here."""

from __future__ import annotations

from pathlib import Path

from modelctl.repo import Repo
from modelkit import ENVIRONMENTS, ConfigError, ModelConfig, load_config

PORT_ENVS = ("dev", *ENVIRONMENTS)


def port_clashes(repo: Repo, checked: dict[Path, ModelConfig]) -> list[str]:
    """A line per port that two models use, for every model in ``checked`` (compared with every model)."""
    configs: dict[Path, ModelConfig] = {}
    for name in repo.model_names():
        path = (repo.model_dir(name) / "config.yaml").resolve()
        if path in checked:
            continue
        try:
            configs[path] = load_config(path)
        except ConfigError:
            continue  # reported when that model is validated
    configs.update(checked)
    owners: dict[int, list[tuple[Path, str]]] = {}
    for path, config in configs.items():
        for env in PORT_ENVS:
            owners.setdefault(config.port(env), []).append((path, env))
    problems = []
    for port, users in sorted(owners.items()):
        if len(users) > 1 and any(path in checked for path, _ in users):
            where = " and ".join(f"{_shown(repo, path)} (serving.ports.{env})" for path, env in users)
            problems.append(f"port {port} is used by {where}: give each model its own ports")
    return problems


def _shown(repo: Repo, path: Path) -> str:
    try:
        return str(path.relative_to(repo.root.resolve()))
    except ValueError:
        return str(path)
