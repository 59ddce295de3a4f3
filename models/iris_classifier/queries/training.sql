-- Training data for iris_classifier when $IRIS_CLASSIFIER_DATA_URL is set (any SQLAlchemy URL).
-- Return one row per example: a column for each feature in api_schema.FEATURES and `target`, the class id.
SELECT * FROM iris_classifier_training
