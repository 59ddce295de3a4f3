"""The model `config.yaml` contract, defined once.

The pydantic models below are the single definition. `config.schema.json` next to this
file is generated from them (``python -m modelkit.schema``) for editors and other tools,
and a test fails if it drifts. Both the `modelctl` CLI and every model service load a
config through :func:`load_config`, so a service runs with exactly the defaults the CLI
validated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

SCHEMA_VERSION = 1

Framework = Literal["sklearn", "xgboost", "lightgbm", "pytorch", "catboost", "tensorflow", "custom"]
Task = Literal["classification", "regression"]
Input = Literal["tabular", "text", "image", "entity"]  # what a request row carries (issue 21)
ImageFormat = Literal["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"]  # Pillow's names
Target = Literal["local", "kubernetes", "bentocloud"]
EnvName = Literal["staging", "production"]

# The one source of these lists: everything else (template rules, CLI choices, tests) derives from them.
FRAMEWORKS: tuple[str, ...] = get_args(Framework)
TASKS: tuple[str, ...] = get_args(Task)
INPUTS: tuple[str, ...] = get_args(Input)
TARGETS: tuple[str, ...] = get_args(Target)
ENVIRONMENTS: tuple[str, ...] = get_args(EnvName)

_SLUG = r"^[a-z][a-z0-9_]{0,39}$"
_CPU = r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$"
_MEMORY = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|K|M|G|T)?$"
_CRON_FIELD = re.compile(r"^(\*|\d+(-\d+)?)(/\d+)?(,(\*|\d+(-\d+)?)(/\d+)?)*$")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


class _Section(BaseModel):
    # strict: YAML already yields typed values, so "2" for an integer is a typo, not data.
    # extra=forbid: an unknown key is almost always a misspelt known key.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Batching(_Section):
    """Adaptive batching of concurrent requests into one model call."""

    enabled: bool = False
    # Rows merged into one model call; unset: serving.max_rows. Never below max_rows (Serving checks), so a request
    # that arrives alone is one call: BentoML splits a larger request into chunks, and once its first chunks took
    # longer than max_latency_ms it cancels the rest and answers 503 for the whole request, even with nothing else
    # queued (seen in CI: 999 images on a loaded machine). Under concurrent load BentoML may still split a request
    # at a batch's edge and shed load with 503, which the load-test gate's error rate measures.
    max_batch_size: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    # Measured: 200 ms gave 2-21 % 503s under load, 1000 ms none (see bench/serving.py).
    max_latency_ms: Annotated[int, Field(ge=10, le=60_000)] = 1000


class Ports(_Section):
    """Loopback port of the `local` deploy target, per environment."""

    dev: Annotated[int, Field(ge=1024, le=65535)] = 3000
    staging: Annotated[int, Field(ge=1024, le=65535)] = 3100
    production: Annotated[int, Field(ge=1024, le=65535)] = 3200

    @model_validator(mode="after")
    def _distinct(self) -> Ports:
        if len({self.dev, self.staging, self.production}) != 3:
            raise ValueError("dev, staging and production ports must differ")
        return self


def _default_image_formats() -> list[ImageFormat]:
    return ["PNG", "JPEG"]


class Serving(_Section):
    workers: Annotated[int, Field(ge=1, le=64)] = 1
    concurrency: Literal["async", "threads"] = "async"
    threads: Annotated[int, Field(ge=1, le=256)] = 4
    timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    max_concurrency: Annotated[int, Field(ge=1, le=100_000)] = 256
    max_request_bytes: Annotated[int, Field(ge=1024, le=1_073_741_824)] = 1_048_576
    # How long a request body may take to arrive (issue 20, item 7): bodies are read before a request
    # takes one of max_concurrency's slots, and one that arrives too slowly gets 408. A body may take
    # body_grace_s plus one second per body_min_bytes_per_s bytes received (0: no rate), and never
    # more than body_timeout_s. 256 connections sending a byte every 10 s used to hold every slot.
    body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 10.0
    body_grace_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    body_min_bytes_per_s: Annotated[int, Field(ge=0, le=1_073_741_824)] = 1000
    max_rows: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    batching: Batching = Batching()
    ports: Ports = Ports()
    # Off by default: BentoML's tracing middleware costs ~28 % of request CPU even when
    # nothing is sampled (see ../shared/notes/facts.md); on keeps spans + X-BentoML-Request-ID.
    tracing: bool = False
    metrics: bool = True
    # Off by default: a log line per request cost BentoML 1.29x -> 0.91x of the FastAPI baseline's
    # throughput (bench/serving.py); /metrics still counts every request. Turn on to debug.
    access_log: bool = False
    # Limits of text and image inputs (input: text, image; issue 21). A longer text field or a larger, bigger or
    # other-format image gets 400 naming the field; the whole body stays bounded by max_request_bytes (413).
    max_text_chars: Annotated[int, Field(ge=1, le=1_000_000)] = 5000
    max_image_bytes: Annotated[int, Field(ge=64, le=1_073_741_824)] = 524_288
    # Width x height: a small file can declare a huge image (a decompression bomb); refused before it is decoded.
    max_image_pixels: Annotated[int, Field(ge=1, le=200_000_000)] = 4_000_000
    image_formats: Annotated[list[ImageFormat], Field(min_length=1)] = Field(default_factory=_default_image_formats)

    @field_validator("batching")
    @classmethod
    def _lone_requests_whole(cls, batching: Batching, info: ValidationInfo) -> Batching:
        size, max_rows = batching.max_batch_size, info.data.get("max_rows")
        if batching.enabled and size is not None and isinstance(max_rows, int) and size < max_rows:
            raise ValueError(
                f"max_batch_size ({size}) is below serving.max_rows ({max_rows}): BentoML would split a request of "
                "more rows and answer 503 for it once its first chunks took longer than max_latency_ms, even with "
                "nothing else queued; leave max_batch_size out (it follows max_rows), raise it, or lower max_rows"
            )
        return batching

    @property
    def batch_rows(self) -> int:
        """Rows merged into one model call under batching: batching.max_batch_size, or max_rows when unset."""
        return self.batching.max_batch_size or self.max_rows


class LoadTest(_Section):
    users: Annotated[int, Field(ge=1, le=10_000)] = 50
    spawn_rate: Annotated[float, Field(gt=0, le=10_000)] = 10.0
    # 20 s at ~1,500 req/s is ~30k requests: a stable P90 (bench/time_to_endpoint.py).
    duration_s: Annotated[int, Field(ge=1, le=3600)] = 20
    max_p90_ms: Annotated[float, Field(gt=0)] = 500.0
    max_error_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    payload: str = "sample_request.json"


class Resources(_Section):
    cpu: Annotated[str, Field(pattern=_CPU)] = "1"
    memory: Annotated[str, Field(pattern=_MEMORY)] = "1Gi"
    gpu: Annotated[int, Field(ge=0, le=16)] = 0


class Scaling(_Section):
    min_replicas: Annotated[int, Field(ge=0, le=1000)] = 1
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 3
    target_cpu_percent: Annotated[int, Field(ge=1, le=100)] = 70

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) must not exceed max_replicas ({self.max_replicas})")
        return self


class Environment(_Section):
    approval: bool = False
    # BentoCloud deployments require an API token (access_authorization) unless this opts out.
    public: bool = False


def _default_environments() -> dict[EnvName, Environment]:
    return {"staging": Environment(approval=False), "production": Environment(approval=True)}


class Kubernetes(_Section):
    """The `kubernetes` target: where the containerized bento's image lives and where it runs."""

    namespace: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = "models"
    image_repository: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._:/-]*$")] | None = None
    context: str | None = None  # kubectl context to apply to; manifests are only rendered when unset
    # How long a deploy waits for the rollout (every replica updated and available) before it fails and puts the
    # previous version back; also the Deployment's progressDeadlineSeconds (issue 20 item 10).
    rollout_timeout_s: Annotated[int, Field(ge=1, le=86_400)] = 600


class BentoCloud(_Section):
    cluster: str | None = None


class Watch(_Section):
    """After a deploy, watch the live version; breach a limit and it is rolled back automatically."""

    duration_s: Annotated[int, Field(ge=0, le=86_400)] = 30  # 0 turns the watch off
    interval_s: Annotated[float, Field(gt=0, le=600)] = 5.0
    min_requests: Annotated[int, Field(ge=0)] = 20  # fewer requests than this: the rates are not judged
    max_5xx_rate: Annotated[float, Field(ge=0, le=1)] = 0.01
    max_p90_ms: Annotated[float, Field(gt=0)] | None = None  # default: loadtest.max_p90_ms


class Deploy(_Section):
    targets: Annotated[list[Target], Field(min_length=1)] = ["local"]
    environments: dict[EnvName, Environment] = Field(default_factory=_default_environments)
    resources: Resources = Resources()
    scaling: Scaling = Scaling()
    instance_type: str | None = None
    kubernetes: Kubernetes = Kubernetes()
    bentocloud: BentoCloud = BentoCloud()
    watch: Watch = Watch()

    @field_validator("targets")
    @classmethod
    def _unique_targets(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"targets must be unique, got {value}")
        return value

    @model_validator(mode="after")
    def _kubernetes_needs_an_image(self) -> Deploy:
        if "kubernetes" in self.targets and self.kubernetes.image_repository is None:
            raise ValueError("targets include kubernetes, so kubernetes.image_repository must be set")
        return self


def _check_cron(expr: str) -> str:
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expr!r} must have 5 fields (minute hour day month weekday)")
    names = ("minute", "hour", "day-of-month", "month", "day-of-week")
    for field, name, (low, high) in zip(fields, names, _CRON_RANGES, strict=True):
        if not _CRON_FIELD.match(field):
            raise ValueError(f"cron {name} field {field!r} is not a number, range, list or step")
        for number in re.findall(r"\d+", field.split("/")[0]):
            if not low <= int(number) <= high:
                raise ValueError(f"cron {name} value {number} is outside {low}-{high}")
    return expr


class Retrain(_Section):
    schedule: str | None = None
    # Default per task (see DEFAULT_METRIC): accuracy/maximize for classification, rmse/minimize for regression.
    metric: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = "accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    min_improvement: Annotated[float, Field(ge=0)] = 0.005
    # An absolute floor (a ceiling when direction is minimize) every candidate must reach, champion or not.
    min_metric: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)


def _default_ignore() -> list[str]:
    return ["notebooks/**", "**/*.ipynb", "**/*.md"]


class CI(_Section):
    # Globs relative to the model folder; a change only to these never rebuilds or deploys.
    ignore: list[str] = Field(default_factory=_default_ignore)
    # Repo-relative globs outside the model folder whose changes also select the model.
    extra_paths: list[str] = Field(default_factory=list)


class Notify(_Section):
    slack_channel: Annotated[str, Field(pattern=r"^#[a-z0-9_.-]{1,80}$")] | None = None


_DURATION = r"^[0-9]+(\.[0-9]+)?(s|m|h|d|w)$"
# Fields of a request row (or prediction columns) a model may name in monitor.sensitive.
_FIELD = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"


SmokeEnv = Literal["dev", "staging", "production"]


def _default_smoke_envs() -> list[SmokeEnv]:
    return ["dev", "staging"]


class SmokeLoad(_Section):
    """What the post-deploy watch sends itself where no real traffic arrives (issue 22, item 6)."""

    # Where the watch may send synthetic requests; production only when listed here.
    environments: list[SmokeEnv] = Field(default_factory=_default_smoke_envs)
    rate_per_s: Annotated[float, Field(gt=0, le=1000)] = 5.0


class Monitor(_Section):
    """Prediction logs, drift and quality monitoring (issue 22). Drift statistics come from SciPy."""

    # Share of requests whose rows and predictions are logged (1.0: all; 0: logging off).
    sample_rate: Annotated[float, Field(ge=0, le=1)] = 1.0
    # Request fields that never reach the log as they are: "drop" leaves them out, "hash" keeps a salted sha256.
    sensitive: dict[Annotated[str, Field(pattern=_FIELD)], Literal["drop", "hash"]] = Field(default_factory=dict)
    # Rows a worker's log holds until written (its buffer and its writer process together); beyond: dropped, counted.
    buffer_rows: Annotated[int, Field(ge=100, le=10_000_000)] = 50_000
    flush_s: Annotated[float, Field(gt=0, le=3600)] = 30.0
    # Drift tests: two-sample Kolmogorov-Smirnov for numbers, chi-square for categories, or PSI for both.
    numeric_test: Literal["ks", "psi"] = "ks"
    categorical_test: Literal["chi2", "psi"] = "chi2"
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.01  # p-value below it (ks, chi2): the column drifted
    psi_threshold: Annotated[float, Field(gt=0)] = 0.2  # PSI above it: the column drifted
    # Drift is declared when at least this share of the features drifted, or the predictions did.
    drift_share: Annotated[float, Field(gt=0, le=1)] = 0.5
    min_rows: Annotated[int, Field(ge=1, le=100_000_000)] = 200
    window: Annotated[str, Field(pattern=_DURATION)] = "24h"  # default --since
    # Quality once labels arrive: the live value of retrain.metric may be worse than the training value by this much.
    max_metric_drop: Annotated[float, Field(ge=0)] = 0.05
    min_labels: Annotated[int, Field(ge=1)] = 50
    schedule: str | None = "30 5 * * *"  # cron, UTC: the scheduled monitor (GitHub workflow, Airflow DAG)
    retrain_on_drift: bool = False  # drift or a quality breach starts a retrain (which must still beat the champion)
    smoke: SmokeLoad = SmokeLoad()

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        return None if value is None else _check_cron(value)


class ModelConfig(_Section):
    """A model's `config.yaml`: identity, serving, load test, deploy, retrain, CI, notify, monitor."""

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        frozen=True,
        title="modelctl model config",
        json_schema_extra={"$id": f"https://modelctl.dev/schema/model-config.v{SCHEMA_VERSION}.json"},
    )

    schema_version: Literal[1] = 1
    name: Annotated[str, Field(pattern=_SLUG)]
    description: Annotated[str, Field(min_length=1, max_length=500)]
    owner: Annotated[str, Field(min_length=1, max_length=200)]
    framework: Framework
    task: Task = "classification"
    input: Input = "tabular"
    serving: Serving = Serving()
    loadtest: LoadTest = LoadTest()
    deploy: Deploy = Deploy()
    retrain: Retrain = Retrain()
    ci: CI = CI()
    notify: Notify = Notify()
    monitor: Monitor = Monitor()

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, data: Any) -> Any:
        """The retrain metric and direction default per task (rmse, minimize for regression) unless set."""
        if not isinstance(data, dict) or data.get("task") not in DEFAULT_METRIC:
            return data
        retrain = {} if data.get("retrain") is None else data["retrain"]
        if not isinstance(retrain, dict):
            return data
        metric, direction = DEFAULT_METRIC[data["task"]]
        return {**data, "retrain": {"metric": metric, "direction": direction, **retrain}}

    def port(self, env: str) -> int:
        return int(getattr(self.serving.ports, env))


# The retrain metric and direction a task gets when config.yaml names none.
DEFAULT_METRIC: dict[str, tuple[str, str]] = {
    "classification": ("accuracy", "maximize"),
    "regression": ("rmse", "minimize"),
}


def schema_path() -> Path:
    return Path(__file__).with_name("config.schema.json")
