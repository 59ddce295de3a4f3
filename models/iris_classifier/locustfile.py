"""Exploratory load test of iris_classifier: `modelctl loadtest MODEL --locustfile` runs it.

Requests are drawn from sample_request.json, within the bounds of api_schema.Features. The gate itself sends the same
requests from the platform's own Locust user (the model supplies only data), so this file never decides a verdict.
"""

from modelkit.loadtest import ModelUser  # noqa: F401  (Locust runs the User classes it finds here)
