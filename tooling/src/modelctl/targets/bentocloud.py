"""The `bentocloud` target: the `bentoml deploy -f` configuration, deployed when credentials exist.

Every deployment requires an API token (``access_authorization``) unless the model's config opts out
with ``deploy.environments.<env>.public: true`` (issue 15 item 11).

Undeploy and the post-deploy watch call BentoCloud's REST API directly (the routes BentoML 1.4's own
client uses: ``/api/v2/deployments/<name>[/terminate]``, header ``X-YATAI-API-TOKEN``), so they work
without the model's environment, which a removed model no longer has.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from modelctl import cmd, platformenv, watch
from modelctl.errors import ModelctlError
from modelkit import ModelConfig

if TYPE_CHECKING:
    import httpx  # imported where used: most commands never talk HTTP

DEFAULT_ENDPOINT = "https://cloud.bentoml.com"  # BentoML's default for BENTO_CLOUD_API_ENDPOINT


class BentoCloudError(ModelctlError):
    pass


def deployment_name(model: str, env: str) -> str:
    return f"{model.replace('_', '-')}-{env}"


def requires_token(config: ModelConfig, env: str) -> bool:
    """True unless ``deploy.environments.<env>.public`` opts out (an environment not listed is not public)."""
    environment = config.deploy.environments.get(env)  # type: ignore[call-overload]
    return not (environment is not None and environment.public)


def render(config: ModelConfig, bento: str, env: str, service: str) -> dict[str, Any]:
    scaling = config.deploy.scaling
    document: dict[str, Any] = {
        "name": deployment_name(config.name, env),
        "bento": bento,
        "access_authorization": requires_token(config, env),
        "envs": [{"name": "MODEL_ENV", "value": env}],
        "services": {
            service: {
                "instance_type": config.deploy.instance_type or "cpu.1",
                "scaling": {"min_replicas": scaling.min_replicas, "max_replicas": scaling.max_replicas},
            }
        },
    }
    if config.deploy.bentocloud.cluster:
        document["cluster"] = config.deploy.bentocloud.cluster
    return document


class _PlainDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def write(document: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(document, Dumper=_PlainDumper, sort_keys=False))
    return path


CREDENTIALS = ("BENTO_CLOUD_API_KEY", "BENTO_CLOUD_API_ENDPOINT")


def credentials(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """BentoCloud's token and endpoint from ``environ`` (default: this process's): all `bentoml deploy` gets."""
    environ = os.environ if environ is None else environ
    return {name: environ[name] for name in CREDENTIALS if environ.get(name)}


def deploy(python: Path, path: Path, env: Mapping[str, str], credentials: Mapping[str, str]) -> str:
    """`bentoml deploy -f path` with ``python``, the platform's own BentoML (modelctl.platformenv), never a
    model's environment: started with ``env`` (the allow-listed base), handed BentoCloud's ``credentials`` on
    stdin (so they are not in its /proc entry), nothing else."""
    if not credentials.get("BENTO_CLOUD_API_KEY"):
        raise BentoCloudError(f"BENTO_CLOUD_API_KEY is not set: rendered {path} but did not deploy it")
    result = cmd.run(
        platformenv.command(python, "deploy", "-f", path),
        what="bentoml deploy",
        env=dict(env),
        input=platformenv.secrets_input(credentials),
        check=False,
    )
    if result.returncode != 0:
        raise BentoCloudError(f"bentoml deploy exited {result.returncode}: {result.output[-500:]}")
    return result.stdout


# --- the REST API ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cloud:
    endpoint: str
    api_key: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, purpose: str = "reach BentoCloud") -> Cloud:
        environ = os.environ if environ is None else environ
        key = environ.get("BENTO_CLOUD_API_KEY", "").strip()
        if not key:
            raise BentoCloudError(f"BENTO_CLOUD_API_KEY is not set: cannot {purpose}")
        endpoint = environ.get("BENTO_CLOUD_API_ENDPOINT", "").strip() or DEFAULT_ENDPOINT
        if not endpoint.startswith(("https://", "http://")):
            raise BentoCloudError(f"BENTO_CLOUD_API_ENDPOINT {endpoint!r} is not an http(s) URL")
        return cls(endpoint.rstrip("/"), key)

    def request(self, method: str, path: str, cluster: str | None, timeout: float, what: str) -> httpx.Response:
        import httpx

        params = {"cluster": cluster} if cluster else None
        try:
            return httpx.request(
                method,
                self.endpoint + path,
                params=params,
                headers={"X-YATAI-API-TOKEN": self.api_key},
                timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise BentoCloudError(
                f"cannot reach BentoCloud at {self.endpoint} to {what}: {type(exc).__name__}: {exc}"
            ) from exc


def _not_found(response: httpx.Response) -> bool:
    # BentoML's client treats 404, and 400 "record not found" from older servers, as absent.
    return response.status_code == 404 or (response.status_code == 400 and "record not found" in response.text)


def _refused(response: httpx.Response, what: str) -> BentoCloudError:
    if response.status_code in (401, 403):
        return BentoCloudError(
            f"BentoCloud refused to {what} (HTTP {response.status_code}): "
            "check that BENTO_CLOUD_API_KEY is valid and has Developer Operations Access"
        )
    return BentoCloudError(f"BentoCloud could not {what}: HTTP {response.status_code} {response.text[:300]}".rstrip())


def undeploy(
    name: str, *, cluster: str | None = None, environ: Mapping[str, str] | None = None, timeout: float = 30.0
) -> str:
    """Terminate and delete deployment ``name``; "deleted", or "absent" when there was none.

    Raises BentoCloudError when the credentials are missing or refused, or BentoCloud cannot be reached.
    """
    what = f"undeploy {name}"
    cloud = Cloud.from_env(environ, purpose=what)
    terminated = cloud.request("POST", f"/api/v2/deployments/{name}/terminate", cluster, timeout, what)
    if _not_found(terminated):
        return "absent"
    if terminated.status_code != 200:
        raise _refused(terminated, f"terminate deployment {name}")
    deleted = cloud.request("DELETE", f"/api/v2/deployments/{name}", cluster, timeout, what)
    if deleted.status_code != 200 and not _not_found(deleted):
        raise _refused(deleted, f"delete deployment {name} (it is terminated)")
    return "deleted"


def undeploy_config(config: ModelConfig, env: str, environ: Mapping[str, str] | None = None) -> str:
    return undeploy(deployment_name(config.name, env), cluster=config.deploy.bentocloud.cluster, environ=environ)


def endpoint_url(
    name: str, *, cluster: str | None = None, environ: Mapping[str, str] | None = None, timeout: float = 30.0
) -> str:
    """The first endpoint URL of deployment ``name``."""
    what = f"read deployment {name}"
    cloud = Cloud.from_env(environ, purpose=what)
    response = cloud.request("GET", f"/api/v2/deployments/{name}", cluster, timeout, what)
    if _not_found(response):
        raise BentoCloudError(f"BentoCloud has no deployment {name}")
    if response.status_code != 200:
        raise _refused(response, what)
    try:
        urls = response.json().get("urls") or []
    except ValueError as exc:
        raise BentoCloudError(f"BentoCloud answered {what} with something that is not JSON") from exc
    if not urls or not isinstance(urls[0], str):
        raise BentoCloudError(f"deployment {name} has no endpoint URL yet")
    url = urls[0] if urls[0].startswith(("https://", "http://")) else f"https://{urls[0]}"
    return url.rstrip("/")


def metrics_scraper(
    name: str,
    *,
    cluster: str | None = None,
    environ: Mapping[str, str] | None = None,
    timeout: float = 10.0,
) -> watch.Scraper:
    """A scraper for :func:`modelctl.watch.watch`: the deployment endpoint's /metrics.

    A protected deployment needs a token with Protected Endpoint Access: BENTO_CLOUD_ENDPOINT_TOKEN, or
    BENTO_CLOUD_API_KEY when that one has both scopes. Failures raise WatchError with the reason.
    """
    environ = os.environ if environ is None else environ
    try:
        url = endpoint_url(name, cluster=cluster, environ=environ, timeout=timeout)
    except BentoCloudError as exc:
        raise watch.WatchError(str(exc)) from exc
    token = environ.get("BENTO_CLOUD_ENDPOINT_TOKEN") or environ.get("BENTO_CLOUD_API_KEY", "")
    return watch.http_scraper(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout, source=name)
