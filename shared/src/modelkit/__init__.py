"""Library code every model uses: config, service options, request guards, error bodies, logging.

Imported here: what `modelctl` needs too (no bentoml, numpy or locust). A model imports the rest by module:
`modelkit.service` (build_service), `modelkit.training` (load_sql, git_commit), `modelkit.loadtest`
(ModelUser) and the pytest plugin `modelkit.testing`.
"""

from modelkit.config import ENVIRONMENTS, FRAMEWORKS, INPUTS, SCHEMA_VERSION, TARGETS, TASKS, ModelConfig
from modelkit.errors import MAX_ERROR_BYTES, ErrorBodies
from modelkit.loader import ConfigError, ConfigProblem, load_config, parse_config, read_yaml
from modelkit.logs import configure_logging
from modelkit.serving import (
    RequestLimits,
    api_options,
    error_body,
    freeze_gc,
    model_ref,
    service_class,
    service_options,
)

__all__ = [
    "ENVIRONMENTS",
    "MAX_ERROR_BYTES",
    "FRAMEWORKS",
    "INPUTS",
    "SCHEMA_VERSION",
    "TARGETS",
    "TASKS",
    "ConfigError",
    "ConfigProblem",
    "ErrorBodies",
    "ModelConfig",
    "RequestLimits",
    "api_options",
    "configure_logging",
    "error_body",
    "freeze_gc",
    "load_config",
    "model_ref",
    "parse_config",
    "read_yaml",
    "service_class",
    "service_options",
]
