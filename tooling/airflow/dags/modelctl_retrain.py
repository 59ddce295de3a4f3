"""Airflow DAGs `retrain_<model>` for this monorepo's models (built by modelctl.airflow_dags).

Point Airflow's dags_folder here, or copy this file into yours and set MODELCTL_ROOT to the checkout.
"""

import os
from pathlib import Path

from modelctl.airflow_dags import build_dags

globals().update(build_dags(Path(os.environ.get("MODELCTL_ROOT") or Path(__file__).resolve().parents[3])))
