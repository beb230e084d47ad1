"""The control plane's tables (SQLAlchemy 2 ORM). Alembic migrations (``migrations/``) create and upgrade them;
a test checks that the migrated schema equals this one on SQLite and PostgreSQL.

Rows are keyed by what the backends call things (backend name, pipeline id, run id, task id, map index, try), so an
observed fact delivered twice updates one row. ``as_of`` is when the backend said what the row holds: an older fact
never overwrites a newer one. ``change_seq`` orders changes for the API's change stream (gaps are fine).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database (SQLite stores naive text; PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


KEY = String(250)


class Base(DeclarativeBase):
    pass


class BackendRow(Base):
    __tablename__ = "backends"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(Text)
    health: Mapped[str] = mapped_column(String(16), default="unknown")  # ok / degraded / unreachable / unknown
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    lag_seconds: Mapped[float | None] = mapped_column(Float)
    events_total: Mapped[int] = mapped_column(BigInteger, default=0)
    requests_total: Mapped[int] = mapped_column(BigInteger, default=0)


class PipelineRow(Base):
    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("backend", "pipeline_id", name="uq_pipelines_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    team: Mapped[str | None] = mapped_column(String(63), index=True)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RunRow(Base):
    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("backend", "pipeline_id", "run_id", name="uq_runs_key"),
        Index("ix_runs_change_seq", "change_seq"),
        Index("ix_runs_pipeline_time", "pipeline_id", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    run_id: Mapped[str] = mapped_column(KEY)
    state: Mapped[str] = mapped_column(String(32))
    raw_state: Mapped[str | None] = mapped_column(String(64))
    logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    queued_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    change_seq: Mapped[int] = mapped_column(BigInteger)


class AttemptRow(Base):
    __tablename__ = "task_attempts"
    __table_args__ = (
        UniqueConstraint(
            "backend", "pipeline_id", "run_id", "task_id", "map_index", "try_number", name="uq_attempts_key"
        ),
        Index("ix_attempts_change_seq", "change_seq"),
        Index("ix_attempts_run", "backend", "pipeline_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    run_id: Mapped[str] = mapped_column(KEY)
    task_id: Mapped[str] = mapped_column(KEY)
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    raw_state: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    source: Mapped[str] = mapped_column(String(16))
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    change_seq: Mapped[int] = mapped_column(BigInteger)


class CursorRow(Base):
    """Where each observer stream resumes; written in the same transaction as the rows it covers."""

    __tablename__ = "cursors"

    backend: Mapped[str] = mapped_column(String(63), primary_key=True)
    stream: Mapped[str] = mapped_column(String(32), primary_key=True)  # "poll", "push"
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class CounterRow(Base):
    """Monotonic counters (the change sequence) in one row each, incremented inside the writing transaction."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class TokenRow(Base):
    """API tokens: only a SHA-256 of the token is kept (tokens are 256-bit random, so a slow hash adds nothing)."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(63))  # None: every team (admins only)
    role: Mapped[str] = mapped_column(String(16))  # viewer / operator / admin / ingest
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class LineageEventRow(Base):
    """OpenLineage events exactly as received (Marquez's model); runs and attempts are derived from Airflow's."""

    __tablename__ = "lineage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    payload_sha: Mapped[str] = mapped_column(String(64), unique=True)  # a re-sent event is stored once
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    event_time: Mapped[datetime | None] = mapped_column(UtcDateTime)
    event_type: Mapped[str | None] = mapped_column(String(16))
    producer: Mapped[str | None] = mapped_column(Text)
    job_namespace: Mapped[str | None] = mapped_column(KEY)
    job_name: Mapped[str | None] = mapped_column(Text)
    run_uuid: Mapped[str | None] = mapped_column(String(64), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class TriggerRow(Base):
    """Runs the control plane started: one row per deterministic key, so a repeated request is recognised."""

    __tablename__ = "triggers"

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    run_id: Mapped[str] = mapped_column(KEY)
    created: Mapped[bool] = mapped_column(Boolean)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# ---------------------------------------------------------------------------------------------- SLAs (meta.service.sla)


class SlaTrackingRow(Base):
    """When the control plane began watching an SLA subject: nothing before it is judged, even after a restart."""

    __tablename__ = "sla_tracking"

    backend: Mapped[str] = mapped_column(String(63), primary_key=True)  # "*" for a dataset
    subject: Mapped[str] = mapped_column(KEY, primary_key=True)  # a pipeline id or "dataset:<uri>"
    since: Mapped[datetime] = mapped_column(UtcDateTime)


class SlaSlotRow(Base):
    """One SLA kind for one slot (a schedule tick, a run, a task try, a stale stretch) of one pipeline on one
    backend. ``missed_at`` is set once, when the miss is first recorded, and never cleared: a miss stays a miss
    (``resolved_at`` says when the late run finally succeeded)."""

    __tablename__ = "sla_slots"
    __table_args__ = (
        UniqueConstraint("backend", "subject", "kind", "slot", name="uq_sla_slots_key"),
        Index("ix_sla_slots_change_seq", "change_seq"),
        Index("ix_sla_slots_deadline", "deadline"),
        Index("ix_sla_slots_state_deadline", "state", "deadline"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    subject: Mapped[str] = mapped_column(KEY)
    team: Mapped[str | None] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(120))
    slot: Mapped[str] = mapped_column(KEY)
    state: Mapped[str] = mapped_column(String(16))  # pending / at_risk / met / missed / unknown
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    detail: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str | None] = mapped_column(KEY)
    task_id: Mapped[str | None] = mapped_column(KEY)
    first_at_risk_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    change_seq: Mapped[int] = mapped_column(BigInteger)


class SlaNoticeRow(Base):
    """One notice about one missed slot: ``miss``, ``escalation`` or ``recovery``, each at most once (the unique key).
    Written in the transaction that records the miss (or its recovery), then delivered: a restart finds what is
    still ``due`` and delivers it; the alert store's per-channel dedup absorbs a send that happened just before a
    crash. ``status``: due / sent / rate_limited / failed / cancelled / native (left to the backend's own alert)."""

    __tablename__ = "sla_notices"
    __table_args__ = (
        UniqueConstraint("backend", "subject", "kind", "slot", "stage", name="uq_sla_notices_key"),
        Index("ix_sla_notices_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    subject: Mapped[str] = mapped_column(KEY)
    kind: Mapped[str] = mapped_column(String(120))
    slot: Mapped[str] = mapped_column(KEY)
    stage: Mapped[str] = mapped_column(String(16))
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per channel: status, error


# ---------------------------------------------------------------------------------------------- dependencies


class DependencyTrackingRow(Base):
    """When the control plane began driving a downstream pipeline on a backend: upstream successes from before it
    start nothing (a first start must not replay last month), even after a restart."""

    __tablename__ = "dependency_tracking"

    backend: Mapped[str] = mapped_column(String(63), primary_key=True)
    pipeline_id: Mapped[str] = mapped_column(KEY, primary_key=True)
    since: Mapped[datetime] = mapped_column(UtcDateTime)


class DependencyWaitRow(Base):
    """One logical date (or schedule slot) of a downstream pipeline on one backend: what it waits for and what came
    of it. ``state``: waiting -> triggering (claimed: the backend is being asked) -> triggered, or waiting ->
    timed_out (claimed and alerted once). ``upstream_runs`` links the runs that satisfied it to ``run_id``."""

    __tablename__ = "dependency_waits"
    __table_args__ = (
        UniqueConstraint("backend", "pipeline_id", "slot", name="uq_dependency_waits_key"),
        Index("ix_dependency_waits_state", "state"),
        Index("ix_dependency_waits_change_seq", "change_seq"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    team: Mapped[str | None] = mapped_column(String(63), index=True)
    slot: Mapped[str] = mapped_column(KEY)  # the logical date (ISO, UTC) or "run:<backend>:<run id>"
    logical_date: Mapped[datetime | None] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime)
    waiting_for: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # per upstream: what is missing
    upstream_runs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # backend, pipeline, run
    trigger_key: Mapped[str | None] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(KEY)
    run_url: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    timed_out_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # the timeout's alert: due -> in_flight -> sent / failed / none (no channel), delivered like an SLA notice
    alert_status: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    change_seq: Mapped[int] = mapped_column(BigInteger)


class LeaseRow(Base):
    """Who leads a piece of work among replicas of ``meta serve`` on one database (taken with a conditional UPDATE:
    atomic on SQLite and PostgreSQL alike). Leading is for efficiency: exactly-once comes from the claims."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UtcDateTime)


class BackfillRow(Base):
    """One ``meta backfill`` request: resumable (a re-run with the same arguments continues it)."""

    __tablename__ = "backfills"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # deterministic in the request
    pipeline_id: Mapped[str] = mapped_column(KEY)
    backend: Mapped[str] = mapped_column(String(63))
    date_from: Mapped[datetime] = mapped_column(UtcDateTime)
    date_to: Mapped[datetime] = mapped_column(UtcDateTime)
    reprocess: Mapped[str] = mapped_column(String(16))  # none / failed / completed
    with_downstream: Mapped[bool] = mapped_column(Boolean, default=False)
    state: Mapped[str] = mapped_column(String(16))  # running / done / failed
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    native_id: Mapped[str | None] = mapped_column(String(100))  # Airflow's backfill id, when Airflow runs it


class BackfillDateRow(Base):
    """One pipeline on one backend for one logical date of a backfill (the downstreams' dates too)."""

    __tablename__ = "backfill_dates"
    __table_args__ = (
        UniqueConstraint("backfill_id", "backend", "pipeline_id", "logical_date", name="uq_backfill_dates_key"),
        Index("ix_backfill_dates_run", "backend", "pipeline_id", "run_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    backfill_id: Mapped[str] = mapped_column(String(64), index=True)
    backend: Mapped[str] = mapped_column(String(63))
    pipeline_id: Mapped[str] = mapped_column(KEY)
    logical_date: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(32))  # pending / skipped / queued / running / success / failed / ...
    run_id: Mapped[str | None] = mapped_column(KEY)
    trigger_key: Mapped[str | None] = mapped_column(String(250))
    upstream_of: Mapped[str | None] = mapped_column(KEY)  # for a downstream date: the upstream pipeline
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class DatasetForwardRow(Base):
    """A dataset update seen on one backend, forwarded to another (an Airflow asset event, a Prefect event): one row
    per (update, target), claimed before sending, so a restart completes it instead of sending it twice."""

    __tablename__ = "dataset_forwards"
    __table_args__ = (Index("ix_dataset_forwards_status", "status"),)

    key: Mapped[str] = mapped_column(String(250), primary_key=True)
    dataset: Mapped[str] = mapped_column(Text)
    source_backend: Mapped[str] = mapped_column(String(63))
    source_pipeline: Mapped[str] = mapped_column(KEY)
    source_run: Mapped[str] = mapped_column(KEY)
    source_task: Mapped[str | None] = mapped_column(KEY)
    target_backend: Mapped[str] = mapped_column(String(63))
    status: Mapped[str] = mapped_column(String(16))  # due / sending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(100))  # the event's id on the target


# ---------------------------------------------------------------------------------------------- migrations


class MigrationRow(Base):
    """One pipeline being moved between backends (``meta migrate``). ``phase``: ``shadowing`` (live on the source,
    a shadow copy on the target started for each live run) -> ``cutting_over`` -> ``target_live`` (the control plane
    starts each schedule slot after ``handoff_slot`` on the target) -> ``rolling_back`` -> ``shadowing`` again. The
    ``-ing`` phases are where a crashed switch resumes. ``history`` lists every switch (who, when, the hand-off)."""

    __tablename__ = "migrations"

    pipeline_id: Mapped[str] = mapped_column(KEY, primary_key=True)
    team: Mapped[str | None] = mapped_column(String(63), index=True)
    source_backend: Mapped[str] = mapped_column(String(63))
    target_backend: Mapped[str] = mapped_column(String(63))
    shadow_id: Mapped[str] = mapped_column(KEY)  # the shadow copy's pipeline id on the target
    phase: Mapped[str] = mapped_column(String(16))
    shadow_since: Mapped[datetime] = mapped_column(UtcDateTime)  # live runs queued from then on are shadowed
    source_was_paused: Mapped[bool | None] = mapped_column(Boolean)  # before the cutover: rollback restores it
    handoff_slot: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the last slot of the side that handed over
    owed_from: Mapped[datetime | None] = mapped_column(UtcDateTime)  # the first slot the side taking over owes
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class MigrationRunRow(Base):
    """A live run and the shadow run the control plane started for the same logical date: claimed (``triggering``)
    before the target is asked, with a key deterministic in (pipeline, logical date), then ``triggered``."""

    __tablename__ = "migration_runs"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "logical_date", name="uq_migration_runs_key"),
        Index("ix_migration_runs_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[str] = mapped_column(KEY)
    logical_date: Mapped[datetime] = mapped_column(UtcDateTime)
    live_backend: Mapped[str] = mapped_column(String(63))
    live_run_id: Mapped[str] = mapped_column(KEY)
    shadow_backend: Mapped[str] = mapped_column(String(63))
    shadow_pipeline: Mapped[str] = mapped_column(KEY)
    trigger_key: Mapped[str] = mapped_column(String(250))
    shadow_run_id: Mapped[str | None] = mapped_column(KEY)
    state: Mapped[str] = mapped_column(String(16))  # triggering / triggered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # once both runs ended: tasks, load counts and table checksums of both sides (meta.service.migrations.compare)
    comparison: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    compared_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class MigrationSlotRow(Base):
    """A schedule slot of a migrated pipeline that the control plane started itself (while the target is live): one
    row per (pipeline, slot) whichever side runs it, so no slot runs twice across a switch."""

    __tablename__ = "migration_slots"
    __table_args__ = (
        UniqueConstraint("pipeline_id", "slot", name="uq_migration_slots_key"),
        Index("ix_migration_slots_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pipeline_id: Mapped[str] = mapped_column(KEY)
    slot: Mapped[datetime] = mapped_column(UtcDateTime)
    backend: Mapped[str] = mapped_column(String(63))
    trigger_key: Mapped[str] = mapped_column(String(250))
    run_id: Mapped[str | None] = mapped_column(KEY)
    state: Mapped[str] = mapped_column(String(16))  # triggering / triggered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    triggered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
