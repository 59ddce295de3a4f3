"""Scripts that run inside a model's environment (bentoml and the standard library only, no modelctl)."""
