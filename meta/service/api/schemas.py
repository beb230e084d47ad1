"""The API's pydantic models (Prefect server's ``schemas`` layer): what goes over the wire, built from ORM rows.

Nothing here carries a credential: backends expose name, kind, URL (without userinfo) and health; tokens expose
their id, name, team and role, and the secret only once, in :class:`TokenCreated`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field

from meta.plugins.observers import UnifiedState
from meta.service.store.orm import AttemptRow, BackendRow, PipelineRow, RunRow, TokenRow, TriggerRow

# Strings that reach the database: bounded like their columns, and never holding NUL (PostgreSQL refuses it).
NO_NUL = r"^[^\x00]*$"
Key = Annotated[str, Field(min_length=1, max_length=250, pattern=NO_NUL)]
TeamName = Annotated[str, Field(min_length=1, max_length=63, pattern=r"^[a-z][a-z0-9_\-]*$")]
# A trigger key becomes Airflow's dag_run_id and Prefect's idempotency_key: Airflow's run id alphabet.
TriggerKey = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.~:+\-]+$")]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Run(Schema):
    backend: str
    pipeline_id: str
    run_id: str
    state: str = Field(description="unified state (Airflow's names)")
    raw_state: str | None = Field(description="the backend's own state name")
    logical_date: datetime | None
    queued_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    as_of: datetime = Field(description="when the backend said so")
    source: str = Field(description="poll or push")
    external: bool
    extra: dict[str, Any]
    change_seq: int

    @classmethod
    def of(cls, row: RunRow) -> Run:
        return cls.model_validate(row)


class Attempt(Schema):
    backend: str
    pipeline_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    state: str
    raw_state: str | None
    started_at: datetime | None
    ended_at: datetime | None
    as_of: datetime
    source: str
    extra: dict[str, Any]
    change_seq: int

    @classmethod
    def of(cls, row: AttemptRow) -> Attempt:
        return cls.model_validate(row)


class RunPage(BaseModel):
    runs: list[Run]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null: no more")


class RunDetail(BaseModel):
    run: Run
    attempts: list[Attempt] = Field(description="every try of every task, by task, map index and try")


class PipelineOnBackend(BaseModel):
    backend: str
    external: bool = Field(description="a DAG/flow meta did not build")
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    latest_run: Run | None


class Pipeline(BaseModel):
    id: str
    team: str | None
    external: bool = Field(description="external on every backend it was seen on")
    backends: list[PipelineOnBackend]

    @classmethod
    def of(cls, rows: list[PipelineRow], latest: dict[tuple[str, str], RunRow]) -> Pipeline:
        return cls(
            id=rows[0].pipeline_id,
            team=rows[0].team,
            external=all(r.external for r in rows),
            backends=[
                PipelineOnBackend(
                    backend=r.backend,
                    external=r.external,
                    first_seen_at=r.first_seen_at,
                    last_seen_at=r.last_seen_at,
                    latest_run=Run.of(run) if (run := latest.get((r.backend, r.pipeline_id))) else None,
                )
                for r in rows
            ],
        )


def public_url(url: str) -> str:
    """``url`` without user:password (a URL in a workspace file may carry them; the API never shows them)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class Backend(BaseModel):
    name: str
    kind: str
    url: str
    health: str = Field(description="ok / degraded / unreachable / unknown")
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    lag_seconds: float | None
    events_total: int
    requests_total: int

    @classmethod
    def of(cls, row: BackendRow) -> Backend:
        return cls(
            name=row.name,
            kind=row.kind,
            url=public_url(row.url),
            health=row.health,
            last_success_at=row.last_success_at,
            last_error_at=row.last_error_at,
            last_error=row.last_error,
            lag_seconds=row.lag_seconds,
            events_total=row.events_total or 0,
            requests_total=row.requests_total or 0,
        )


class TriggerRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Key | None = Field(default=None, description="required when the pipeline is on several backends")
    params: dict[str, Any] = Field(default_factory=dict)
    key: TriggerKey | None = Field(
        default=None,
        description="the idempotency key (Airflow dag_run_id, Prefect idempotency_key); default: derived from "
        "pipeline, backend, params and request_id, so an identical request never starts a second run",
    )
    request_id: Key | None = Field(
        default=None,
        description="a client-chosen id for this request: a new one starts a new run, a retry reuses it",
    )


class Trigger(BaseModel):
    key: str
    backend: str
    pipeline_id: str
    run_id: str
    created: bool = Field(description="false: this key had already started the run, nothing new was started")
    requested_by: str
    requested_at: datetime
    url: str | None = None

    @classmethod
    def of(cls, row: TriggerRow, url: str | None = None) -> Trigger:
        return cls(
            key=row.key,
            backend=row.backend,
            pipeline_id=row.pipeline_id,
            run_id=row.run_id,
            created=row.created,
            requested_by=row.requested_by,
            requested_at=row.requested_at,
            url=url,
        )


Role = Literal["viewer", "operator", "admin", "ingest", "metrics"]


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
    role: Role
    team: TeamName | None = Field(default=None, description="required for viewer/operator; none for ingest/metrics")


class Token(Schema):
    id: int
    name: str
    team: str | None
    role: str
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: TokenRow) -> Token:
        return cls.model_validate(row)


class TokenCreated(Token):
    token: str = Field(description="the token itself: shown this once, only its SHA-256 is stored")


class LineageAccepted(BaseModel):
    stored: bool = Field(description="false: the same event was received before")
    events: int = Field(description="neutral run/attempt events mapped from it (0 for producers meta does not map)")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    store: str | None = Field(
        default=None,
        description="which store this control plane uses (16 hex digits of a hash of its URL, no password): "
        "a `meta` command checks that it talks to its own workspace's control plane",
    )


class Problem(BaseModel):
    """Every error: a sentence, or (request validation) FastAPI's list of what failed where."""

    detail: str | list[dict[str, Any]]


UNIFIED_STATES = tuple(s.value for s in UnifiedState)


# ---------------------------------------------------------------------------------------------- SLAs


class SlaSlot(Schema):
    """One SLA kind for one slot of one pipeline on one backend (a dataset's SLA: backend ``*``)."""

    id: int
    pipeline: str = Field(validation_alias="subject", description="the pipeline id, or dataset:<uri>")
    backend: str
    team: str | None
    kind: str = Field(description="finish_by, start_by, max_duration, fresh_within, deadline:..., tasks.<id>....")
    slot: str = Field(description="the schedule tick, run id, task try or stale stretch this judges")
    state: str = Field(description="pending / at_risk / met / missed / unknown")
    deadline: datetime | None
    detail: str
    run_id: str | None
    task_id: str | None
    first_at_risk_at: datetime | None
    missed_at: datetime | None = Field(description="when the miss was recorded (once)")
    resolved_at: datetime | None = Field(description="when the late run succeeded")
    updated_at: datetime


class SlaCell(BaseModel):
    """The board's cell for one pipeline on one backend."""

    pipeline: str
    backend: str
    team: str | None
    state: str = Field(description="missed while a miss is unresolved; else at_risk / unknown; else the last verdict")
    counts: dict[str, int] = Field(description="slots of the window by state")
    missed_in_window: int
    next_deadline: datetime | None
    attention: list[SlaSlot] = Field(description="unresolved misses, at-risk and unknown slots")
    missed: list[SlaSlot] = Field(description="misses recorded in the window, resolved or not")
    latest: SlaSlot | None = Field(description="the newest decided slot (met or missed)")


class SlaBoard(BaseModel):
    as_of: datetime
    window_hours: float
    counts: dict[str, int] = Field(description="cells by state")
    cells: list[SlaCell]


class SlaHistory(BaseModel):
    slots: list[SlaSlot]
    next_cursor: str | None


# ---------------------------------------------------------------------------------------------- dependencies


class DependencyWait(Schema):
    """One logical date (or schedule slot) of a downstream pipeline on one backend: what it waits for, since and
    until when, and the run the control plane started for it (with the upstream runs that satisfied it)."""

    backend: str
    pipeline: str = Field(validation_alias="pipeline_id")
    team: str | None
    slot: str = Field(description="the logical date (ISO, UTC), a schedule slot, or run:<backend>:<run id>")
    logical_date: datetime | None
    state: str = Field(description="waiting / triggering / triggered / timed_out")
    since: datetime = Field(description="when the wait began (the first upstream run seen, or the slot's tick)")
    until: datetime = Field(description="when waiting gives up (the run fails and alerts.on_failure hears it)")
    waiting_for: list[dict[str, Any]] = Field(description="per upstream: satisfied, detail, run, state, until")
    upstream_runs: list[dict[str, Any]] = Field(description="the upstream runs that satisfied it")
    run_id: str | None = Field(description="the downstream run the control plane started")
    run_url: str | None
    trigger_key: str | None
    triggered_at: datetime | None
    timed_out_at: datetime | None
    alert_status: str | None
    error: str | None = Field(description="why the last start attempt failed (it is retried with the same key)")
    updated_at: datetime


class DependencyEdge(BaseModel):
    """``pipeline`` waits for ``upstream`` (or its task ``task``) on ``upstream_backend`` (None: any)."""

    pipeline: str
    upstream: str
    task: str | None
    upstream_backend: str | None
    align: str
    within: str | None
    timeout: str
    backends: list[str] = Field(description="where the control plane starts the downstream")


class PipelineDependencies(BaseModel):
    pipeline: str
    upstreams: list[DependencyEdge]
    downstreams: list[DependencyEdge]
    waits: list[DependencyWait] = Field(description="newest first")


class DependencyGraph(BaseModel):
    edges: list[DependencyEdge]


# ---------------------------------------------------------------------------------------------- dashboard


class LastRun(BaseModel):
    """A run as a board cell shows it: enough to colour it and link to it."""

    run_id: str
    state: str
    started_at: datetime | None
    ended_at: datetime | None
    url: str | None = Field(description="the run in its backend's own UI")


class BoardCell(BaseModel):
    backend: str
    external: bool
    sla: str = Field(description="met / at_risk / missed / unknown / pending, or none: no SLA on this backend")
    next_deadline: datetime | None
    missed_in_window: int
    detail: str = Field(description="the first slot that needs attention (kind: detail); empty when none does")
    last_run: LastRun | None


class BoardPipeline(BaseModel):
    id: str
    cells: list[BoardCell]


class BoardTeam(BaseModel):
    team: str | None
    pipelines: list[BoardPipeline]


class DashboardBoard(BaseModel):
    as_of: datetime
    counts: dict[str, int] = Field(description="cells by SLA state")
    backends: list[str]
    teams: list[BoardTeam]


class DashboardTask(BaseModel):
    id: str
    upstream: list[str]
    trigger_rule: str | None


class DashboardBackendRuns(BaseModel):
    backend: str
    kind: str
    external: bool
    runs: list[Run] = Field(description="newest first")
    attempts: list[Attempt] = Field(description="every try of the newest run's tasks")


class DashboardPipeline(BaseModel):
    id: str
    team: str | None
    structure: Literal["spec", "observed"] = Field(
        description="spec: the meta pipeline's tasks and edges; observed: task ids seen in runs (no edges known)"
    )
    tasks: list[DashboardTask]
    backends: list[DashboardBackendRuns]
    sla: list[SlaCell]
    sla_history: list[SlaSlot] = Field(description="newest first")
    dependencies: PipelineDependencies = Field(description="what it waits for, what waits for it, recent waits")


class SignedIn(BaseModel):
    """Who the dashboard is signed in as."""

    name: str
    role: str
    team: str | None


class SessionRequest(BaseModel):
    token: Annotated[str, Field(min_length=1, max_length=200, pattern=NO_NUL)]
