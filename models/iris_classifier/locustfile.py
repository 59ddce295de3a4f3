"""Load test of iris_classifier: `modelctl loadtest` runs it with the gate in config.yaml.

Requests are drawn from sample_request.json, within the bounds of api_schema.Features.
"""

from modelkit.loadtest import ModelUser  # noqa: F401  (Locust runs the User classes it finds here)
