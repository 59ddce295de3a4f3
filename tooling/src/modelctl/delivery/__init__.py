"""The road a model travels: train, build, start a candidate, gate it, fuzz it, release it, retrain it.

Commands parse arguments and print; `pipeline`, `retrain` and the Airflow DAG compose these modules.
"""
