"""Load test of {{ cookiecutter.model_slug }}: `modelctl loadtest {{ cookiecutter.model_slug }}` runs it with the gate in config.yaml."""

from modelkit.loadtest import ModelUser  # noqa: F401  (Locust runs the User classes it finds here)
