"""In CI, a retrain after drift is started as the scheduled one is: by dispatching retrain.yml for the model, whose
jobs keep model code away from the store's credentials (this job holds them). Locally it runs in this process.

(The request is the one `modelctl.github.dispatch_deploy` sends for deploy.yml; the two could share one helper.)
"""

from __future__ import annotations

import os

from modelctl.errors import ModelctlError

WORKFLOW = "retrain.yml"


class RetrainDispatchError(ModelctlError):
    pass


def dispatch_retrain(model: str) -> str:
    """Trigger retrain.yml for ``model`` through `workflow_dispatch` (the token needs `actions: write`); the URL."""
    import httpx

    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise RetrainDispatchError(
            f"a retrain after drift in CI needs GITHUB_TOKEN and GITHUB_REPOSITORY to dispatch {WORKFLOW}"
        )
    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    url = f"{api}/repos/{repository}/actions/workflows/{WORKFLOW}/dispatches"
    body = {"ref": os.environ.get("GITHUB_REF_NAME", "main"), "inputs": {"model": model}}
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    try:
        response = httpx.post(url, json=body, timeout=30, headers=headers)
    except httpx.HTTPError as exc:
        raise RetrainDispatchError(f"dispatching {WORKFLOW} failed: {type(exc).__name__}: {exc}") from exc
    if response.status_code != 204:
        raise RetrainDispatchError(f"dispatching {WORKFLOW} answered {response.status_code}: {response.text[:300]}")
    return url
