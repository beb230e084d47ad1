"""Airflow DAG loader for meta: one DAG per pipeline spec (.json/.yaml) under META_SPECS_DIR.

Copy this file into an Airflow dags folder. Specs are read from ``$META_SPECS_DIR``, else from ``specs/`` next to
this file. The words "airflow" and "DAG" above let Airflow's safe-mode file filter pick this file up.
"""

import os
from pathlib import Path

from meta_airflow.loader import load_dags

globals().update(load_dags(os.environ.get("META_SPECS_DIR") or Path(__file__).resolve().parent / "specs"))
