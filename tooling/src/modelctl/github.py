"""What modelctl says to GitHub: step outputs, and dispatching deploy.yml when a retrained candidate wins."""

from __future__ import annotations

import os
from pathlib import Path

from modelctl.errors import ModelctlError, UsageError


class DispatchError(ModelctlError):
    pass


def dispatch_deploy(model: str, candidate: str, bento: str | None = None) -> str:
    """Trigger deploy.yml through `workflow_dispatch`; the token needs `actions: write`. The API URL called."""
    import httpx

    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise DispatchError("promotion in CI needs GITHUB_TOKEN and GITHUB_REPOSITORY to dispatch deploy.yml")
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    url = f"{api}/repos/{repository}/actions/workflows/deploy.yml/dispatches"
    inputs = {"models": model, "candidate": candidate}
    if bento:
        inputs["bento"] = bento
    body = {"ref": os.environ.get("GITHUB_REF_NAME", "main"), "inputs": inputs}
    try:
        response = httpx.post(
            url,
            json=body,
            timeout=30,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": "2022-11-28",
            },
        )
    except httpx.HTTPError as exc:
        raise DispatchError(f"dispatching deploy.yml failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 204:
        raise DispatchError(f"dispatching deploy.yml answered {response.status_code}: {response.text[:300]}")
    return url


def write_outputs(outputs: dict[str, str]) -> None:
    """Append ``key=value`` lines to $GITHUB_OUTPUT (the step's outputs)."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not target:
        raise UsageError("--format github needs $GITHUB_OUTPUT (set by GitHub Actions)")
    with Path(target).open("a", encoding="utf-8") as handle:
        for key, value in outputs.items():
            if "\n" in value:
                raise ValueError(f"output {key} must be one line")
            handle.write(f"{key}={value}\n")
