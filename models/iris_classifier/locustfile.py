"""Load test of iris_classifier: `modelctl loadtest iris_classifier` runs it with the gate in config.yaml."""

from modelkit.loadtest import ModelUser  # noqa: F401  (Locust runs the User classes it finds here)
