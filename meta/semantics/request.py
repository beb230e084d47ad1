"""What a run is asked for, built once and checked the same way for every backend: ``RunRequest``.

Every ``Target.run`` (meta/plugins/targets.py) and ``LocalRunner.run`` (meta/builtin/local/runner.py) receives a
``RunRequest`` instead of loose ``params``/``logical_date``/``run_id`` arguments, so resolving params against the
pipeline, defaulting the logical date and checking the run id happen here and nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from meta.semantics.params import resolve_params
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline

# Airflow's default allowed_run_id_pattern; run ids also name log directories, so "." and ".." are refused too.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+\-]+$")


class InvalidRunRequest(MetaError, ValueError):
    pass


def default_run_id(logical_date: datetime) -> str:
    """Airflow's manual run id: ``manual__<logical date ISO-8601>``."""
    return f"manual__{logical_date.isoformat()}"


def check_run_id(run_id: str) -> str:
    if not RUN_ID_PATTERN.match(run_id) or run_id in (".", ".."):
        raise InvalidRunRequest(
            f"invalid run id {run_id!r}; expected letters, digits and _ . ~ : + - (Airflow's run id alphabet)"
        )
    return run_id


def aware(moment: datetime) -> datetime:
    """A naive date-time means UTC, as in Airflow's REST API."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RunRequest:
    """One run of one pipeline as asked for: params resolved and checked against the pipeline's Params, a valid run
    id and a timezone-aware logical date. Build it with ``RunRequest.build``; backends only read it."""

    pipeline_id: str
    params: Mapping[str, Any]
    logical_date: datetime
    run_id: str
    run_id_given: bool = False  # False: run_id is Airflow's default (a backend may name the run its own way)

    @classmethod
    def build(
        cls,
        pipeline: Pipeline,
        *,
        params: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
    ) -> RunRequest:
        """Raise ``ValidationFailed`` (params) or ``InvalidRunRequest`` (run id) before anything runs."""
        values = resolve_params(pipeline, params)
        moment = aware(logical_date) if logical_date is not None else datetime.now(UTC)
        return cls(
            pipeline_id=pipeline.id,
            params=values,
            logical_date=moment,
            run_id=check_run_id(run_id) if run_id is not None else default_run_id(moment),
            run_id_given=run_id is not None,
        )

    def for_pipeline(self, pipeline: Pipeline) -> RunRequest:
        """This request, after checking it was built for ``pipeline`` (a backend must not run it for another)."""
        if pipeline.id != self.pipeline_id:
            raise InvalidRunRequest(
                f"a run request for pipeline {self.pipeline_id!r} was given pipeline {pipeline.id!r}"
            )
        return self
