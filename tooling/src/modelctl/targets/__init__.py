"""Deploy targets: local (really deployed here), kubernetes and bentocloud (rendered, applied when configured)."""
