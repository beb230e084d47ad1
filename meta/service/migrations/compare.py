"""The comparison of one live run with the shadow run of the same logical date (``meta migrate``, docs/migrate.md).

``compare_pair`` reads both runs' observed facts from the store (runs and task attempts, as every backend's observer
recorded them) and both sides' warehouses, and returns a ``Comparison`` (plain data; ``to_json``/``from_json`` for
``MigrationRunRow.comparison``). It compares:

- each task (and map index): the final state (the newest try's) and the number of tries; a different state or number
  of tries is a disagreement. The duration of the last try is reported (with the shadow/live ratio), never judged.
- the run's final state.
- each ``warehouse_load`` task with ``audit:``: rows inserted/updated/deleted on each side, from the load audit read
  through the live connection and through the shadow connection (``load_audit`` says what is matched).
- each output table: every ``warehouse_load`` target and every ``outputs`` dataset of a ``sql`` task whose URI names
  an existing table on the task's connection (``warehouse://orders``, ``postgres://warehouse/public.orders``): row
  count and an order-independent checksum on each side (``checksums``). The checksum is taken when ``compare_pair``
  is called, which the engine does right after both runs ended: a later run that has already written the table by
  then is included.

The shadow side's connection is the live one renamed by ``migrations.<P>.shadow_connections`` (a load without
``conn`` or ``url`` uses ``warehouse``); URLs come from ``META_CONN_<NAME>`` where the comparison runs. A load whose
shadow writes the same connection as the live one (a literal ``url``, or a connection that is not renamed) still has
its audit counts compared (the two runs' audit rows have different keys), but not its table: that is noted.

Anything that could not be checked (a connection not configured here, a database that refuses) is in ``errors``: a
comparison with errors does not agree, because nothing says it would have.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.orm import Session

from meta.builtin.operators.warehouse.engines import create_engine
from meta.builtin.operators.warehouse.options import TABLE, WarehouseLoadOptions
from meta.execution.connections import DEFAULT_WAREHOUSE, connection_url
from meta.semantics.context import RunContext, render_value
from meta.service.migrations.checksums import TableChecksum, TableMissing, checksum, method_for, table_exists
from meta.service.migrations.load_audit import LoadCounts, read_counts, run_id_forms
from meta.service.store.orm import AttemptRow, MigrationRow, MigrationRunRow, RunRow
from meta.spec.model import OpAction, Pipeline, SqlAction
from meta.spec.workspace import Migration

FORMAT = 1  # of to_json; from_json refuses others
_TABLE = re.compile(TABLE)
_FILE_SCHEMES = frozenset(
    {"file", "s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "hdfs", "http", "https", "ftp", "sftp"}
)


# ---------------------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class RunSide:
    backend: str
    pipeline_id: str
    run_id: str | None  # None: the shadow run was never started
    state: str | None  # None: the control plane has not observed the run

    def to_json(self) -> dict[str, Any]:
        return {"backend": self.backend, "pipeline_id": self.pipeline_id, "run_id": self.run_id, "state": self.state}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunSide:
        return cls(str(data["backend"]), str(data["pipeline_id"]), data.get("run_id"), data.get("state"))


@dataclass(frozen=True)
class TaskSide:
    state: str | None  # the newest try's state; None: no try observed
    tries: int
    duration_seconds: float | None  # of the newest try

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "tries": self.tries, "duration_seconds": self.duration_seconds}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskSide:
        return cls(data.get("state"), int(data.get("tries") or 0), data.get("duration_seconds"))


NOT_RUN = TaskSide(None, 0, None)
RAN = frozenset({"success", "failed"})


@dataclass(frozen=True)
class TaskComparison:
    task_id: str
    map_index: int
    live: TaskSide
    shadow: TaskSide

    @property
    def name(self) -> str:
        return self.task_id if self.map_index < 0 else f"{self.task_id}[{self.map_index}]"

    @property
    def agrees(self) -> bool:
        if self.live.state != self.shadow.state:
            return False
        # Tries only count for a task that ran: a skipped or upstream_failed one has try 0 on one backend and a
        # decided marker on another.
        return self.live.tries == self.shadow.tries or self.live.state not in RAN

    @property
    def duration_ratio(self) -> float | None:
        """shadow / live duration of the last try (reported, never a disagreement)."""
        live, shadow = self.live.duration_seconds, self.shadow.duration_seconds
        return None if live is None or shadow is None or live <= 0 else round(shadow / live, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "map_index": self.map_index,
            "live": self.live.to_json(),
            "shadow": self.shadow.to_json(),
            "agrees": self.agrees,
            "duration_ratio": self.duration_ratio,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskComparison:
        return cls(
            str(data["task_id"]),
            int(data["map_index"]),
            TaskSide.from_json(data["live"]),
            TaskSide.from_json(data["shadow"]),
        )


@dataclass(frozen=True)
class LoadComparison:
    task_id: str
    table: str
    live: LoadCounts | None  # None: no audit row
    shadow: LoadCounts | None

    @property
    def agrees(self) -> bool:
        return self.live == self.shadow

    def to_json(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "table": self.table,
            "live": None if self.live is None else self.live.to_json(),
            "shadow": None if self.shadow is None else self.shadow.to_json(),
            "agrees": self.agrees,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadComparison:
        return cls(
            str(data["task_id"]),
            str(data["table"]),
            LoadCounts.from_json(data.get("live")),
            LoadCounts.from_json(data.get("shadow")),
        )


@dataclass(frozen=True)
class TableComparison:
    table: str
    tasks: tuple[str, ...]  # the tasks that write it
    live_conn: str
    shadow_conn: str
    live: TableChecksum | None  # None: no such table (one that could not be read is in Comparison.errors only)
    shadow: TableChecksum | None

    @property
    def agrees(self) -> bool:
        """Same rows and columns on both sides; or missing on both (a load that failed on both, say)."""
        if self.live is None or self.shadow is None:
            return self.live is None and self.shadow is None
        return (self.live.rows, self.live.checksum, self.live.columns) == (
            self.shadow.rows,
            self.shadow.checksum,
            self.shadow.columns,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "tasks": list(self.tasks),
            "live_conn": self.live_conn,
            "shadow_conn": self.shadow_conn,
            "live": None if self.live is None else self.live.to_json(),
            "shadow": None if self.shadow is None else self.shadow.to_json(),
            "agrees": self.agrees,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TableComparison:
        live, shadow = data.get("live"), data.get("shadow")
        return cls(
            str(data["table"]),
            tuple(data.get("tasks") or ()),
            str(data["live_conn"]),
            str(data["shadow_conn"]),
            None if live is None else TableChecksum.from_json(live),
            None if shadow is None else TableChecksum.from_json(shadow),
        )


@dataclass(frozen=True)
class Comparison:
    """One live/shadow pair compared. ``differences``: what disagrees, each naming the task or table and both
    values; ``errors``: what could not be checked; ``notes``: what was deliberately not compared, and why."""

    pipeline_id: str
    logical_date: datetime
    live: RunSide
    shadow: RunSide
    tasks: tuple[TaskComparison, ...]
    loads: tuple[LoadComparison, ...]
    tables: tuple[TableComparison, ...]
    differences: tuple[str, ...]
    errors: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    compared_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    transient: bool = False  # some error is a database that was down or locked: comparing again may succeed

    @property
    def agrees(self) -> bool:
        return not self.differences and not self.errors

    @property
    def verdict(self) -> str:
        """``agree``, ``differ`` (something disagrees) or ``incomplete`` (nothing disagrees, something was not
        checked)."""
        return "differ" if self.differences else "incomplete" if self.errors else "agree"

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "pipeline_id": self.pipeline_id,
            "logical_date": self.logical_date.isoformat(),
            "compared_at": self.compared_at.isoformat(),
            "agrees": self.agrees,
            "verdict": self.verdict,
            "live": self.live.to_json(),
            "shadow": self.shadow.to_json(),
            "tasks": [t.to_json() for t in self.tasks],
            "loads": [x.to_json() for x in self.loads],
            "tables": [t.to_json() for t in self.tables],
            "differences": list(self.differences),
            "errors": list(self.errors),
            "notes": list(self.notes),
            "transient": self.transient,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Comparison:
        if data.get("format") != FORMAT:
            raise ValueError(f"a comparison of format {data.get('format')!r}; this meta reads format {FORMAT}")
        return cls(
            pipeline_id=str(data["pipeline_id"]),
            logical_date=datetime.fromisoformat(data["logical_date"]),
            live=RunSide.from_json(data["live"]),
            shadow=RunSide.from_json(data["shadow"]),
            tasks=tuple(TaskComparison.from_json(t) for t in data.get("tasks") or ()),
            loads=tuple(LoadComparison.from_json(x) for x in data.get("loads") or ()),
            tables=tuple(TableComparison.from_json(t) for t in data.get("tables") or ()),
            differences=tuple(data.get("differences") or ()),
            errors=tuple(data.get("errors") or ()),
            notes=tuple(data.get("notes") or ()),
            compared_at=datetime.fromisoformat(data["compared_at"]),
            transient=bool(data.get("transient", False)),
        )


# ---------------------------------------------------------------------------------------------- comparing


def compare_pair(
    session: Session,
    migration: MigrationRow,
    pair: MigrationRunRow,
    pipeline: Pipeline,
    settings: Migration | None = None,
    *,
    url_of: Callable[[str], str] = connection_url,
) -> Comparison:
    """Compare the pair's live and shadow runs (call it once both ended; see the module's docstring).

    ``pipeline`` is the live pipeline's spec (its load tasks and outputs say what to read), ``settings`` the
    workspace's ``migrations.<P>`` (its ``shadow_connections``), ``url_of`` resolves a connection name to a URL."""
    settings = settings or Migration()
    live_run = find_run(session, pair.live_backend, pair.live_run_id, [pair.pipeline_id, migration.pipeline_id])
    shadow_run = find_run(session, pair.shadow_backend, pair.shadow_run_id, [pair.shadow_pipeline, migration.shadow_id])
    live = RunSide(pair.live_backend, pair.pipeline_id, pair.live_run_id, live_run.state if live_run else None)
    shadow = RunSide(
        pair.shadow_backend, pair.shadow_pipeline, pair.shadow_run_id, shadow_run.state if shadow_run else None
    )
    found = _Findings()
    if live.state != shadow.state:
        found.differ(f"run: {_state(live.state)} (live) vs {_state(shadow.state)} (shadow)")
    tasks = _compare_tasks(session, pipeline, live_run, shadow_run, found)
    context = RunContext(
        pipeline.id,
        pair.live_run_id,
        pair.logical_date,
        params={name: p.default for name, p in pipeline.params.items()},
        backend=pair.live_backend,
    )
    writes = list(_writes(pipeline, context, settings, found))
    with _Engines(url_of, found) as engines:
        loads = _compare_loads(writes, engines, tasks, (live, shadow), (live_run, shadow_run), migration, found)
        tables = _compare_tables(writes, engines, found)
    return Comparison(
        pipeline_id=pair.pipeline_id,
        logical_date=pair.logical_date,
        live=live,
        shadow=shadow,
        tasks=tasks,
        loads=loads,
        tables=tables,
        differences=tuple(found.differences),
        errors=tuple(found.errors),
        notes=tuple(found.notes),
        transient=found.transient,
    )


class ComparisonDeferred(RuntimeError):
    """A database was down or locked: the engine compares the pair again on a later tick."""


RETRY_FOR = timedelta(hours=1)


def comparer(
    pipelines: Mapping[str, Pipeline],
    migrations: Mapping[str, Migration],
    *,
    url_of: Callable[[str], str] = connection_url,
    retry_for: timedelta = RETRY_FOR,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[Session, MigrationRow, MigrationRunRow, Any, Any], dict[str, Any]]:
    """The engine's ``Comparer`` (``MigrationEngine(comparer=...)``): ``compare_pair(...).to_json()`` with the live
    pipeline's spec and the workspace's ``migrations.<P>``.

    Raises (the engine logs it and tries again on a later tick) when the pipeline is no longer in the specs, and when
    a database was down or locked (``Comparison.transient``) while the later of the two runs ended less than
    ``retry_for`` ago; after that the comparison is stored as it is, ``incomplete``, so the report says why."""

    def compare(
        session: Session, migration: MigrationRow, pair: MigrationRunRow, live: Any, shadow: Any
    ) -> dict[str, Any]:
        pipeline = pipelines.get(pair.pipeline_id)
        if pipeline is None:
            raise LookupError(f"pipeline {pair.pipeline_id!r} is not in the workspace's specs: cannot compare its runs")
        settings = migrations.get(pair.pipeline_id)
        comparison = compare_pair(session, migration, pair, pipeline, settings, url_of=url_of)
        ended = [t for t in (getattr(live, "ended_at", None), getattr(shadow, "ended_at", None)) if t is not None]
        if comparison.transient and (not ended or now() - max(ended) < retry_for):
            raise ComparisonDeferred(
                f"{pair.pipeline_id} {pair.logical_date.isoformat()}: {'; '.join(comparison.errors)}"
            )
        return comparison.to_json()

    return compare


@dataclass
class _Findings:
    differences: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    transient: bool = False

    def differ(self, text: str) -> None:
        self.differences.append(text)

    def unreadable(self, text: str, exc: BaseException) -> None:
        """A database that refused: an error, and worth another try when it looks passing (down, locked)."""
        self.errors.append(f"{text}: {_short(exc)}")
        self.transient = self.transient or is_transient(exc)


def is_transient(exc: BaseException) -> bool:
    """A database that is down, unreachable or locked (a DuckDB file another process writes): it may answer later."""
    message = str(getattr(exc, "orig", None) or exc).lower()
    return isinstance(exc, sa.exc.OperationalError) or "lock" in message or "connection refused" in message


def _state(state: str | None) -> str:
    return state or "not observed"


def find_run(session: Session, backend: str, run_id: str | None, pipeline_ids: Sequence[str]) -> RunRow | None:
    """The run as observed: by its stored key, else with the id with/without the Prefect prefix."""
    if run_id is None:
        return None
    ids = list(dict.fromkeys(pipeline_ids))
    rows = session.scalars(
        sa.select(RunRow).where(
            RunRow.backend == backend, RunRow.run_id.in_(run_id_forms(run_id)), RunRow.pipeline_id.in_(ids)
        )
    ).all()
    return min(rows, key=lambda r: (ids.index(r.pipeline_id), r.run_id != run_id), default=None)


# ---------------------------------------------------------------------------------------------- tasks


def _task_sides(session: Session, run: RunRow | None) -> dict[tuple[str, int], TaskSide]:
    if run is None:
        return {}
    attempts = session.scalars(
        sa.select(AttemptRow).where(
            AttemptRow.backend == run.backend,
            AttemptRow.pipeline_id == run.pipeline_id,
            AttemptRow.run_id == run.run_id,
        )
    ).all()
    newest: dict[tuple[str, int], AttemptRow] = {}
    for attempt in attempts:
        key = (attempt.task_id, attempt.map_index)
        if key not in newest or attempt.try_number > newest[key].try_number:
            newest[key] = attempt
    sides = {}
    for key, last in newest.items():
        duration = None
        if last.started_at is not None and last.ended_at is not None:
            duration = round((last.ended_at - last.started_at).total_seconds(), 3)
        # The highest try number, not the rows seen: an observer that missed an early try still counts it.
        sides[key] = TaskSide(last.state, last.try_number, duration)
    return sides


def _compare_tasks(
    session: Session, pipeline: Pipeline, live_run: RunRow | None, shadow_run: RunRow | None, found: _Findings
) -> tuple[TaskComparison, ...]:
    live, shadow = _task_sides(session, live_run), _task_sides(session, shadow_run)
    keys = set(live) | set(shadow)
    seen_ids = {task_id for task_id, _ in keys}
    keys |= {(t.id, -1) for t in pipeline.tasks if t.id not in seen_ids}  # never run on either side: listed too
    order = {t.id: i for i, t in enumerate(pipeline.tasks)}
    result = []
    for task_id, map_index in sorted(keys, key=lambda k: (order.get(k[0], len(order)), k[0], k[1])):
        if task_id not in order and (task_id, map_index) not in shadow:
            # a task of the live DAG the spec does not have (an imported ExternalTaskSensor became depends_on)
            found.notes.append(f"task {task_id}: on the live side only; the spec has no such task")
            continue
        compared = TaskComparison(
            task_id, map_index, live.get((task_id, map_index), NOT_RUN), shadow.get((task_id, map_index), NOT_RUN)
        )
        result.append(compared)
        a, b = compared.live, compared.shadow
        if a.state != b.state:
            found.differ(f"task {compared.name}: {a.state or 'not run'} (live) vs {b.state or 'not run'} (shadow)")
        elif not compared.agrees:
            found.differ(f"task {compared.name}: {_tries(a.tries)} (live) vs {_tries(b.tries)} (shadow)")
    return tuple(result)


def _tries(count: int) -> str:
    return f"{count} try" if count == 1 else f"{count} tries"


# ---------------------------------------------------------------------------------------------- writes


@dataclass(frozen=True)
class _Target:
    """Where one side writes: a connection name, or a load's literal ``url`` (shown as ``url of task X``)."""

    label: str
    conn: str | None
    url: str | None = None


@dataclass(frozen=True)
class _Write:
    task_id: str
    table: str
    live: _Target
    shadow: _Target
    audit_table: str | None  # only loads have one
    is_load: bool
    # a replace_partition load: the run's partition (column, value), the slice of the table this run owns
    partition: tuple[str, Any] | None = None


def _writes(pipeline: Pipeline, context: RunContext, settings: Migration, found: _Findings) -> Iterator[_Write]:
    """What each task writes, and where each side writes it."""
    renamed = settings.shadow_connections
    for task in pipeline.tasks:
        action = task.action
        if isinstance(action, OpAction) and action.op == "warehouse_load":
            try:
                variables = context.template_vars(task.id)
                options = WarehouseLoadOptions.model_validate(render_value(dict(action.with_), variables))
            except Exception as exc:  # a template that needs the run's own values, or invalid after rendering
                found.errors.append(f"load {task.id}: cannot tell which table it writes: {exc}")
                continue
            if options.url is not None:
                live = shadow = _Target(f"url of task {task.id}", None, options.url)
            else:
                name = options.conn or DEFAULT_WAREHOUSE
                live, shadow = _Target(name, name), _Target(renamed.get(name, name), renamed.get(name, name))
            where = options.audit_table()
            audit = None if where is None else ".".join(p for p in where if p)
            if audit is None:
                found.notes.append(
                    f"load {task.id}: no audit (audit: false), rows inserted/updated/deleted not compared"
                )
            partition = (options.partition.column, options.partition.value) if options.partition else None
            yield _Write(task.id, options.table, live, shadow, audit, True, partition)
        elif isinstance(action, SqlAction):
            for uri in task.outputs:
                table = output_table(uri)
                if table is not None:
                    name = action.conn
                    yield _Write(
                        task.id,
                        table,
                        _Target(name, name),
                        _Target(renamed.get(name, name), renamed.get(name, name)),
                        None,
                        False,
                    )


def output_table(uri: str) -> str | None:
    """The table a dataset URI names, when it looks like one: the last path segment (``postgres://warehouse/
    public.orders``), else the host (``warehouse://orders``), else the bare name (``orders``); never for object
    stores, files or web URLs (``s3://...``)."""
    if "://" not in uri:
        candidate = uri
    else:
        parts = urlsplit(uri)
        if parts.scheme.lower() in _FILE_SCHEMES:
            return None
        segments = [s for s in parts.path.split("/") if s]
        candidate = segments[-1] if segments else parts.netloc
    return candidate if _TABLE.fullmatch(candidate or "") else None


class _Engines(contextlib.AbstractContextManager["_Engines"]):
    """One engine per URL for the whole comparison, disposed at the end; a URL that cannot be resolved is an error
    reported once."""

    def __init__(self, url_of: Callable[[str], str], found: _Findings) -> None:
        self.url_of, self.found = url_of, found
        self.engines: dict[str, sa.Engine | None] = {}

    def get(self, target: _Target) -> sa.Engine | None:
        if target.label not in self.engines:
            try:
                url = target.url if target.url is not None else self.url_of(target.conn or DEFAULT_WAREHOUSE)
                self.engines[target.label] = create_engine(url)
            except Exception as exc:
                self.found.errors.append(f"connection {target.label}: {exc}")
                self.engines[target.label] = None
        return self.engines[target.label]

    def __exit__(self, *exc_info: object) -> None:
        for engine in self.engines.values():
            if engine is not None:
                engine.dispose()


# ---------------------------------------------------------------------------------------------- loads


def _pipeline_ids(run: RunRow | None, *known: str) -> list[str]:
    """Every id a run's loads may have written into the audit: the stored ids and the DAG id the observer saw."""
    ids = list(known)
    if run is not None:
        ids += [run.pipeline_id, *(str(v) for k, v in (run.extra or {}).items() if k == "dag_id" and v)]
    return list(dict.fromkeys(ids))


def _compare_loads(
    writes: Iterable[_Write],
    engines: _Engines,
    tasks: Sequence[TaskComparison],
    sides: tuple[RunSide, RunSide],
    runs: tuple[RunRow | None, RunRow | None],
    migration: MigrationRow,
    found: _Findings,
) -> tuple[LoadComparison, ...]:
    live, shadow = sides
    ids = (_pipeline_ids(runs[0], live.pipeline_id), _pipeline_ids(runs[1], shadow.pipeline_id, migration.shadow_id))
    result = []
    for write in writes:
        if not write.is_load or write.audit_table is None:
            continue
        counts: list[LoadCounts | None] = []
        unmatched = False
        for i, (side, target, run_side) in enumerate((("live", write.live, live), ("shadow", write.shadow, shadow))):
            engine = engines.get(target)
            if engine is None or run_side.run_id is None:  # an error already, or a shadow that never started
                counts.append(None)
                unmatched = unmatched or engine is None
                continue
            try:
                found_counts = read_counts(engine, write.audit_table, write.task_id, run_side.run_id, ids[i])
            except (sa.exc.SQLAlchemyError, NotImplementedError) as exc:
                found.unreadable(f"load {write.task_id}: cannot read the audit {write.audit_table} ({side})", exc)
                found_counts, unmatched = None, True
            if found_counts is None and not unmatched and _succeeded(tasks, write.task_id, side):
                # The load committed (its audit row is written in the same transaction), so the row is there under
                # ids this comparison does not know: say so rather than call it a difference.
                found.errors.append(
                    f"load {write.task_id}: succeeded ({side}) but {write.audit_table} on {target.label} has no row "
                    f"for task {write.task_id}, run {run_side.run_id}, pipeline {' or '.join(ids[i])}"
                )
                unmatched = True
            counts.append(found_counts)
        compared = LoadComparison(write.task_id, write.table, counts[0], counts[1])
        result.append(compared)
        if not compared.agrees and not unmatched:
            found.differ(
                f"load {write.task_id} ({write.table}): {_counts(compared.live)} (live) vs "
                f"{_counts(compared.shadow)} (shadow)"
            )
    return tuple(result)


def _succeeded(tasks: Sequence[TaskComparison], task_id: str, side: str) -> bool:
    states = [getattr(t, side).state for t in tasks if t.task_id == task_id]
    return bool(states) and all(state == "success" for state in states)


def _counts(counts: LoadCounts | None) -> str:
    if counts is None:
        return "no audit row"
    return f"inserted {counts.inserted}, updated {counts.updated}, deleted {counts.deleted}"


# ---------------------------------------------------------------------------------------------- tables


def _compare_tables(writes: Iterable[_Write], engines: _Engines, found: _Findings) -> tuple[TableComparison, ...]:
    grouped: dict[tuple[str, str, str, tuple[str, Any] | None], list[_Write]] = {}
    for write in writes:
        grouped.setdefault((write.live.label, write.shadow.label, write.table, write.partition), []).append(write)
    result = []
    for (live_label, shadow_label, table, partition), group in grouped.items():
        tasks = tuple(dict.fromkeys(w.task_id for w in group))
        first = group[0]
        if live_label == shadow_label:
            found.notes.append(
                f"table {table}: not checksummed, the shadow writes the live {live_label} too (rename it in "
                "migrations.<pipeline>.shadow_connections)"
            )
            continue
        live_engine, shadow_engine = engines.get(first.live), engines.get(first.shadow)
        if live_engine is None or shadow_engine is None:
            continue
        if not any(w.is_load for w in group):  # a sql output: only a table that exists on the live side
            try:  # NotImplementedError: introspection knows the loads' databases only (PostgreSQL, DuckDB, SQLite)
                if not table_exists(live_engine, table):
                    found.notes.append(
                        f"output {table} of task {tasks[0]}: no such table on {live_label}, not compared"
                    )
                    continue
            except (sa.exc.SQLAlchemyError, NotImplementedError) as exc:
                found.unreadable(f"table {table} (live, {live_label}): cannot read", exc)
                continue
        method = method_for(live_engine.dialect.name, shadow_engine.dialect.name)
        sums: list[TableChecksum | None] = []
        unreadable = False
        for side, engine, label in (("live", live_engine, live_label), ("shadow", shadow_engine, shadow_label)):
            try:
                sums.append(checksum(engine, table, method, partition))
            except TableMissing:
                sums.append(None)
            except (sa.exc.SQLAlchemyError, NotImplementedError) as exc:
                found.unreadable(f"table {table} ({side}, {label}): cannot read", exc)
                sums.append(None)
                unreadable = True
        if unreadable:
            continue  # the error says it; a half-read table is neither agreeing nor differing
        compared = TableComparison(table, tasks, live_label, shadow_label, sums[0], sums[1])
        result.append(compared)
        if not compared.agrees:
            found.differ(_table_difference(compared))
    return tuple(result)


def _table_difference(t: TableComparison) -> str:
    if t.live is None or t.shadow is None:
        side, label = ("live", t.live_conn) if t.live is None else ("shadow", t.shadow_conn)
        present = t.shadow if t.live is None else t.live
        assert present is not None
        return (
            f"table {t.table}: missing on the {side} connection {label} (the other side has {present.rows} rows); "
            f"written by {_tasks(t.tasks)}"
        )
    if t.live.columns != t.shadow.columns:
        return (
            f"table {t.table}: columns {', '.join(t.live.columns)} (live) vs {', '.join(t.shadow.columns)} (shadow); "
            f"written by {_tasks(t.tasks)}"
        )
    return (
        f"table {t.table}: checksum {t.live.checksum[:8]}… (live) != {t.shadow.checksum[:8]}… (shadow); "
        f"rows {t.live.rows} vs {t.shadow.rows}; written by {_tasks(t.tasks)}"
    )


def _tasks(tasks: Sequence[str]) -> str:
    return ("task " if len(tasks) == 1 else "tasks ") + ", ".join(tasks)


def _short(exc: BaseException) -> str:
    return str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
