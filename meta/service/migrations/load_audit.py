"""The rows one run's load task wrote, read back from the load audit (``warehouse_load`` with ``audit:``).

What each backend writes into the audit's key (pipeline_id, run_id, task_id) is the op's run context
(``meta.builtin.operators.plugin.run_warehouse_load``):

- Airflow (``meta_airflow.runtime.run_context``): the DAG id and the DAG run's ``run_id``, which is also the run id the
  control plane stores (``observers/airflow.py``).
- Prefect (``meta_prefect.driver.make_context``, and ``meta_prefect.tasks.run_context`` for the native task): the
  pipeline id (= the flow name) and ``prefect__<flow run id>``, which is also what the control plane stores
  (``observers/prefect_facts.RUN_PREFIX``).
- local: the pipeline id and the runner's run id, as stored.
- task_id: the meta task id everywhere. A mapped load's instances share the key, so the audit keeps the last
  instance's counts only.

So the match is exact in practice; to stay right if a side stores or writes the id with or without the Prefect
prefix, or under the DAG id rather than the pipeline id, a row matches when its ``task_id`` is the task's, its
``run_id`` is the stored run id with or without ``prefect__``, and its ``pipeline_id`` is one of the ids the run is
known by (``pipeline_ids``). Several matches (never expected) take the exact one, else the newest.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from meta.builtin.operators.warehouse.introspect import describe
from meta.service.migrations.checksums import split_table
from meta.service.observers.prefect_facts import RUN_PREFIX


@dataclass(frozen=True)
class LoadCounts:
    inserted: int
    updated: int
    deleted: int

    def __str__(self) -> str:
        return f"+{self.inserted} ~{self.updated} -{self.deleted}"

    def to_json(self) -> dict[str, int]:
        return {"inserted": self.inserted, "updated": self.updated, "deleted": self.deleted}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> LoadCounts | None:
        return None if data is None else cls(int(data["inserted"]), int(data["updated"]), int(data["deleted"]))


def run_id_forms(run_id: str) -> list[str]:
    """The run id as stored, and with/without the Prefect prefix."""
    bare = run_id.removeprefix(RUN_PREFIX)
    return list(dict.fromkeys([run_id, bare, RUN_PREFIX + bare]))


def read_counts(
    engine: sa.Engine, audit_table: str, task_id: str, run_id: str, pipeline_ids: Iterable[str]
) -> LoadCounts | None:
    """The audit row of (one of ``pipeline_ids``, ``run_id``, ``task_id``); None when there is none (or no audit
    table yet: the load never committed on that side)."""
    schema, name = split_table(audit_table)
    pipelines = list(dict.fromkeys(pipeline_ids))
    with engine.connect() as conn:
        if describe(conn, schema, name) is None:
            return None
        audit = sa.table(
            name,
            *(
                sa.column(c)
                for c in ("pipeline_id", "run_id", "task_id", "inserted", "updated", "deleted", "loaded_at")
            ),
            schema=schema,
        )
        rows = conn.execute(
            sa.select(audit).where(
                audit.c.task_id == task_id,
                audit.c.run_id.in_(run_id_forms(run_id)),
                audit.c.pipeline_id.in_(pipelines),
            )
        ).all()
    if not rows:
        return None
    exact = [r for r in rows if r.run_id == run_id and r.pipeline_id == pipelines[0]]
    row = exact[0] if exact else max(rows, key=lambda r: str(r.loaded_at))
    return LoadCounts(int(row.inserted), int(row.updated), int(row.deleted))
