-- Training data for {{ cookiecutter.model_slug }} when ${{ cookiecutter.model_slug.upper() }}_DATA_URL is set (any SQLAlchemy URL).
-- Return one row per example: a column for each feature in api_schema.FEATURES and `target`, {{ "the value to predict" if cookiecutter.task == "regression" else "the class id" }}.
SELECT * FROM {{ cookiecutter.model_slug }}_training
