"""Library code every model service uses: config, service options, request guards, logging."""

from modelkit.config import ENVIRONMENTS, FRAMEWORKS, SCHEMA_VERSION, TARGETS, TASKS, ModelConfig
from modelkit.loader import ConfigError, ConfigProblem, load_config, parse_config
from modelkit.logs import configure_logging
from modelkit.serving import RequestLimits, api_options, error_body, freeze_gc, model_ref, service_options

__all__ = [
    "ENVIRONMENTS",
    "FRAMEWORKS",
    "SCHEMA_VERSION",
    "TARGETS",
    "TASKS",
    "ConfigError",
    "ConfigProblem",
    "ModelConfig",
    "RequestLimits",
    "api_options",
    "configure_logging",
    "error_body",
    "freeze_gc",
    "load_config",
    "model_ref",
    "parse_config",
    "service_options",
]
