"""meta's Deadline Alert callback for Airflow's plugins folder.

DAGs compiled by meta name it as meta_deadline.on_deadline_missed; the code lives in meta_airflow.deadline.
"""

from meta_airflow.deadline import on_deadline_missed

__all__ = ["on_deadline_missed"]
