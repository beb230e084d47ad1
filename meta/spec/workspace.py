"""The workspace file (``meta.yaml`` at a project root): which backends exist, which pipelines run where, who may see
what, and how the control plane runs. Pipeline specs stay backend-neutral; placement lives here.

Credentials appear only as ``${secret:NAME}`` references (resolved at run time by meta's secret providers, never
stored, logged or returned). Frozen, ``extra="forbid"``, like the pipeline model.

Checks that span fields (a placement naming an unknown backend, two Airflow backends sharing an OpenLineage
namespace) raise :class:`WorkspaceInvalid`, which keeps the path of each offending value, so the loader
(``meta.authoring.workspace``) reports each one at its own file:line:col. Relative paths (``specs``, ``specs_dir``,
``flows_dir``, ``state_dir``) are kept as written: the loader resolves them against the file's folder.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from meta.spec.model import (
    SLA,
    ChannelRef,
    DatasetUri,
    Duration,
    Escalation,
    Identifier,
    Model,
    Schedule,
    known_timezone,
    slot_sla_problem,
)

SECRET_REF = re.compile(r"^\$\{secret:[A-Za-z0-9_.\-/]+\}$")
_EMBEDDED_REF = re.compile(r"\$\{secret:[A-Za-z0-9_.\-/]+\}")
# scheme://user:password@host...: the password part of a URL's userinfo.
_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/@:]*:(.*)@")  # to the last @, as SQLAlchemy reads it
# The schema of credential fields: editors flag a literal before the loader refuses it.
_SECRET_SCHEMA: dict[str, Any] = {"pattern": SECRET_REF.pattern}
NAME_PATTERN = r"^[a-z][a-z0-9_\-]*$"
Name = Annotated[
    str,
    Field(
        pattern=NAME_PATTERN,
        min_length=1,
        max_length=63,
        description="lower-case letters, digits, '_' and '-', starting with a letter",
    ),
]
# A pipeline id or a glob over them ("sales_*"); external DAG/flow names are matched the same way.
PipelinePattern = Annotated[
    str,
    Field(
        min_length=1,
        max_length=250,
        pattern=r"^[A-Za-z0-9_.\-*?\[\]]+$",
        description="a pipeline id or a glob over ids ('sales_*', 'report_?')",
    ),
]
Loc = tuple[str | int, ...]


class WorkspaceInvalid(ValueError):
    """Problems spanning several fields, each with the path of the value it is about (``("placements", 0,
    "backend")``); the message never holds a value that could be a credential."""

    def __init__(self, problems: list[tuple[Loc, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{'.'.join(map(str, loc))}: {message}" for loc, message in problems))


def _secret_ref(value: str | None, field: str) -> str | None:
    if value is not None and not SECRET_REF.match(value):
        # Never echo the value: it is probably the credential itself.
        raise ValueError(f"{field} must be a secret reference like '${{secret:NAME}}', not a literal value")
    return value


def _no_userinfo(value: str) -> str:
    """A backend URL carries no credentials: they go in their own fields, as secret references."""
    if re.match(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/]*@", value):
        raise ValueError(
            "url must not hold credentials ('user:password@'); put them in username/password (airflow) or "
            "auth (prefect) as '${secret:NAME}'"
        )
    return value


def _no_literal_password(value: str | None, field: str, example: str) -> str | None:
    """A URL may carry its password only as a reference: ``postgresql://meta:${secret:PG_PASSWORD}@db/meta``."""
    if value is None or SECRET_REF.match(value):
        return value
    found = _URL_PASSWORD.match(value)
    if found and found.group(1) and not SECRET_REF.match(found.group(1)):
        raise ValueError(
            f"{field} holds a literal password; write it as a secret reference, e.g. "
            f"'{example}', or the whole URL as '${{secret:NAME}}'"
        )
    return value


class BackendBase(Model):
    description: str | None = Field(default=None, description="what this backend is, for people")


class AirflowBackend(BackendBase):
    """An Airflow 3 instance: observed over REST v2 (and OpenLineage pushes); meta deploys by writing specs into the
    folder its loader DAG reads."""

    kind: Literal["airflow"]
    url: Annotated[str, Field(pattern=r"^https?://", description="the API server, e.g. http://127.0.0.1:8080")]
    username: str | None = Field(default=None, description="the API user (a name, or '${secret:NAME}')")
    password: str | None = Field(
        default=None, description="'${secret:NAME}' holding the API user's password", json_schema_extra=_SECRET_SCHEMA
    )
    specs_dir: str | None = Field(
        default=None,
        description="the folder meta's loader DAG reads specs from (relative: to this file's folder); "
        "needed by `meta deploy` (default: META_AIRFLOW_SPECS_DIR)",
    )
    openlineage_namespace: str | None = Field(
        default=None, description="the namespace this instance's OpenLineage provider sends (default: backend name)"
    )
    ui_url: str | None = Field(default=None, description="the web UI, for links (default: url)")

    @field_validator("password")
    @classmethod
    def _password_is_secret(cls, value: str | None) -> str | None:
        return _secret_ref(value, "password")

    @field_validator("url")
    @classmethod
    def _url_has_no_password(cls, value: str) -> str:
        return _no_userinfo(value)


class PrefectBackend(BackendBase):
    """A Prefect 3 server: observed over its events websocket and REST API; meta deploys one deployment per
    pipeline into ``work_pool``."""

    kind: Literal["prefect"]
    url: Annotated[str, Field(pattern=r"^https?://", description="the API, e.g. http://127.0.0.1:4200/api")]
    auth: str | None = Field(
        default=None,
        description="'${secret:NAME}' holding PREFECT_API_AUTH_STRING (user:pw)",
        json_schema_extra=_SECRET_SCHEMA,
    )
    work_pool: str | None = Field(
        default=None, description="the (process) work pool deployments go to; needed by `meta deploy`"
    )
    flows_dir: str | None = Field(
        default=None,
        description="where `meta deploy` writes the generated flow files; the pool's workers must read it "
        "(relative: to this file's folder; default: <META_HOME>/prefect/flows)",
    )
    ui_url: str | None = Field(default=None, description="the web UI, for links")
    push: bool = Field(
        default=True,
        description="keep Prefect's events websocket open for pushes (false: poll only, every poll_interval)",
    )

    @field_validator("auth")
    @classmethod
    def _auth_is_secret(cls, value: str | None) -> str | None:
        return _secret_ref(value, "auth")

    @field_validator("url")
    @classmethod
    def _url_has_no_password(cls, value: str) -> str:
        return _no_userinfo(value)


class LocalBackend(BackendBase):
    """meta's embedded runner on this machine: observed through its run history; nothing to deploy."""

    kind: Literal["local"]
    state_dir: str | None = Field(
        default=None,
        description="the local runner's state directory (relative: to this file's folder; default: META_HOME)",
    )


class PluginBackend(BackendBase):
    """A backend kind a plugin registers (``register_observers``, e.g. a Dagster observer): meta checks only the
    shape here; the plugin reads ``options``, and ``credentials`` are secret references resolved for it."""

    kind: Annotated[
        str,
        Field(
            pattern=r"^[a-z][a-z0-9_\-]*$",
            description="the kind a plugin registers",
            json_schema_extra={"not": {"enum": ["airflow", "prefect", "local"]}},
        ),
    ]
    url: str = Field(description="where the backend answers")
    options: dict[str, Any] = Field(default_factory=dict, description="the plugin's own settings")
    credentials: dict[str, str] = Field(
        default_factory=dict, description="name -> '${secret:NAME}' (never a literal value)"
    )

    @field_validator("credentials")
    @classmethod
    def _credentials_are_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, reference in value.items():
            _secret_ref(reference, f"credentials.{name}")
        return value

    @field_validator("url")
    @classmethod
    def _url_has_no_password(cls, value: str) -> str:
        return _no_userinfo(value)


BACKEND_KINDS = ("airflow", "prefect", "local")


def _backend_kind(value: Any) -> str | None:
    """The union's tag: a built-in kind, "plugin" for any other kind, None (an error) when ``kind`` is missing."""
    kind = value.get("kind") if isinstance(value, dict) else getattr(value, "kind", None)
    if kind is None:
        return None
    return kind if kind in BACKEND_KINDS else "plugin"


Backend = Annotated[
    Annotated[AirflowBackend, Tag("airflow")]
    | Annotated[PrefectBackend, Tag("prefect")]
    | Annotated[LocalBackend, Tag("local")]
    | Annotated[PluginBackend, Tag("plugin")],
    Discriminator(_backend_kind),
]


class Placement(Model):
    """``pipelines`` (ids or globs) run on ``backend``; a pipeline may be placed on several backends."""

    backend: Name
    pipelines: tuple[PipelinePattern, ...] = Field(min_length=1)


class Team(Model):
    """A team owns the pipelines matching ``pipelines`` (meta-built or external), plus those whose spec says
    ``team: <this team>``."""

    pipelines: tuple[PipelinePattern, ...] = ()
    description: str | None = None


class WatchedSla(Model):
    """An SLA the control plane watches on pipelines meta did not build (DAGs and flows it only observes), or on a
    dataset. meta cannot read an external pipeline's schedule, so ``finish_by`` / ``start_by`` need ``schedule``."""

    pipeline: PipelinePattern | None = Field(default=None, description="an observed DAG/flow id, or a glob")
    dataset: DatasetUri | None = Field(
        default=None, description="a dataset URI: fresh when a task listing it in outputs succeeded (sla.fresh_within)"
    )
    backend: Name | None = Field(
        default=None, description="only on this backend (default: every backend it is seen on)"
    )
    team: Name | None = Field(default=None, description="for a dataset: the team that sees it (default: admins only)")
    schedule: Schedule | None = Field(default=None, description="the external pipeline's schedule, for slot SLAs")
    timezone: str = Field(default="UTC", description="the timezone of finish_by / start_by")
    sla: SLA
    tasks: dict[Identifier, Duration] = Field(default_factory=dict, description="task id -> its max_duration")
    on_sla_miss: tuple[ChannelRef, ...] = Field(default=(), description="channels told about each miss")
    sla_escalation: Escalation | None = None

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule_shorthand(cls, value: Any) -> Any:
        """As in pipeline specs: ``"0 1 * * *"``, ``{cron: ...}`` or ``{every: 1h}``."""
        if isinstance(value, str):
            return {"kind": "cron", "cron": value}
        if isinstance(value, dict) and "kind" not in value:
            if "cron" in value:
                return {"kind": "cron", **value}
            if "every" in value:
                return {"kind": "interval", **value}
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_timezone(value)

    @model_validator(mode="after")
    def _one_subject(self) -> WatchedSla:
        if (self.pipeline is None) == (self.dataset is None):
            raise ValueError("an SLA entry names either 'pipeline' or 'dataset'")
        if self.dataset is not None and (set(self.sla.kinds()) - {"fresh_within"} or self.tasks):
            raise ValueError("a dataset SLA takes only sla.fresh_within")
        # meta cannot read an external pipeline's schedule: the entry must say it
        problem = slot_sla_problem(
            self.sla, self.schedule, "give the external pipeline's 'schedule' (e.g. '0 1 * * *'), or use fresh_within"
        )
        if problem:
            raise ValueError(problem)
        return self


class ControlPlane(Model):
    """How ``meta serve`` runs: where it keeps its store, where it listens, how often it polls."""

    database: str | None = Field(
        default=None,
        description="SQLAlchemy URL (sqlite:///..., postgresql://user:${secret:NAME}@host/db); "
        "default: sqlite in the state directory (control-plane.db)",
    )
    listen: Annotated[str, Field(pattern=r"^[^:\s]+:\d{1,5}$", description="host:port the API binds")] = (
        "127.0.0.1:8765"
    )
    url: Annotated[str | None, Field(pattern=r"^https?://")] = Field(
        default=None, description="how clients reach the API (default: http://<listen>)"
    )
    poll_interval: Duration = Field(
        default=timedelta(seconds=10), description="how often observers poll each backend (0.2s to 1h)"
    )
    ingest_token: str | None = Field(
        default=None, description="'${secret:NAME}': the OpenLineage ingest token", json_schema_extra=_SECRET_SCHEMA
    )
    admin_token: str | None = Field(
        default=None, description="'${secret:NAME}': a bootstrap admin API token", json_schema_extra=_SECRET_SCHEMA
    )

    @field_validator("ingest_token", "admin_token")
    @classmethod
    def _tokens_are_secrets(cls, value: str | None, info: ValidationInfo) -> str | None:
        return _secret_ref(value, info.field_name or "token")

    @field_validator("database")
    @classmethod
    def _database_has_no_password(cls, value: str | None) -> str | None:
        return _no_literal_password(value, "database", "postgresql://user:${secret:NAME}@host/db")

    @field_validator("url")
    @classmethod
    def _url_has_no_password(cls, value: str | None) -> str | None:
        return None if value is None else _no_userinfo(value)

    @field_validator("listen")
    @classmethod
    def _port_in_range(cls, value: str) -> str:
        if not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError("listen needs a port between 1 and 65535, e.g. 127.0.0.1:8765")
        return value

    @field_validator("poll_interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=0.2) <= value <= timedelta(hours=1):
            raise ValueError("poll_interval must be between 0.2s and 1h")
        return value

    @property
    def client_url(self) -> str:
        """Where clients (``meta status``, the dashboard) reach the API."""
        return (self.url or f"http://{self.listen}").rstrip("/")


class Migration(Model):
    """How ``meta migrate`` moves one pipeline (docs/migrate.md): where its shadow copy writes, and when the two sides
    count as agreeing. The move itself (shadow, cutover, rollback) is a command; its state lives in the control
    plane's database."""

    shadow_connections: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]+$")], str] = Field(
        default_factory=dict,
        description=(
            "live connection name -> the shadow copy's connection name (META_CONN_<NAME> on the target's workers), "
            "e.g. {warehouse: warehouse_shadow}: a schema or database of its own, so the two never write the same "
            "tables. Every connection a writing task uses must be listed"
        ),
    )
    agree_after: int = Field(
        default=3, ge=1, le=1000, description="consecutive agreeing runs after which the report says 'ready'"
    )
    to: Name | None = Field(default=None, description="the target backend (default: `meta migrate shadow --to`)")

    @field_validator("shadow_connections")
    @classmethod
    def _shadow_differs(cls, value: dict[str, str]) -> dict[str, str]:
        same = sorted(name for name, shadow in value.items() if name == shadow)
        if same:
            raise ValueError(f"a shadow connection must differ from the live one: {', '.join(same)}")
        return value


class Workspace(Model):
    """One project's backends, placements, teams and control plane (the ``meta.yaml`` file)."""

    name: Identifier = Field(default="workspace", description="the workspace's name (shown by the control plane)")
    specs: tuple[str, ...] = Field(
        default=("dags",), min_length=1, description="folders or files of pipeline specs (relative: to this file)"
    )
    backends: dict[Name, Backend] = Field(default_factory=dict, description="backend name -> its connection")
    placements: tuple[Placement, ...] = Field(default=(), description="which pipelines run on which backend")
    teams: dict[Name, Team] = Field(default_factory=dict, description="team name -> the pipelines it owns")
    control_plane: ControlPlane = Field(default_factory=ControlPlane)
    slas: tuple[WatchedSla, ...] = Field(
        default=(), description="SLAs on pipelines meta did not build, and on datasets (the control plane watches them)"
    )
    migrations: dict[Identifier, Migration] = Field(
        default_factory=dict, description="pipeline id -> how `meta migrate` shadows and switches it"
    )

    @model_validator(mode="after")
    def _cross_field_checks(self) -> Workspace:
        from meta.spec.checks import did_you_mean

        problems: list[tuple[Loc, str]] = []
        defined = sorted(self.backends)
        for i, placement in enumerate(self.placements):
            if placement.backend not in self.backends:
                problems.append(
                    (
                        ("placements", i, "backend"),
                        f"unknown backend {placement.backend!r}{did_you_mean(placement.backend, defined)}; "
                        f"defined: {', '.join(defined) or 'none'}",
                    )
                )
        seen: dict[str, str] = {}
        for name, backend in self.backends.items():
            if isinstance(backend, AirflowBackend):
                if (backend.username is None) != (backend.password is None):
                    missing = "password" if backend.password is None else "username"
                    given = "username" if missing == "password" else "password"
                    problems.append((("backends", name, given), f"{given} without {missing}: give both or neither"))
                namespace = self.namespace_of(name)
                if namespace in seen:
                    problems.append(
                        (
                            ("backends", name, "openlineage_namespace" if backend.openlineage_namespace else "kind"),
                            f"OpenLineage namespace {namespace!r} is also backend {seen[namespace]!r}'s; "
                            "each Airflow instance needs its own",
                        )
                    )
                seen.setdefault(namespace, name)
        for pipeline_id, migration in self.migrations.items():
            if migration.to is not None and migration.to not in self.backends:
                problems.append(
                    (
                        ("migrations", pipeline_id, "to"),
                        f"unknown backend {migration.to!r}{did_you_mean(migration.to, defined)}; "
                        f"defined: {', '.join(defined) or 'none'}",
                    )
                )
        if problems:
            raise WorkspaceInvalid(problems)
        return self

    # ------------------------------------------------------------------------------------------ placements

    def backends_of(self, pipeline_id: str) -> list[str]:
        """The backends ``pipeline_id`` is placed on, in workspace order, each once."""
        placed: list[str] = []
        for placement in self.placements:
            if placement.backend not in placed and matches(pipeline_id, placement.pipelines):
                placed.append(placement.backend)
        return placed

    def placed_on(self, backend: str, pipeline_ids: Iterable[str]) -> list[str]:
        """The ids among ``pipeline_ids`` placed on ``backend``, in the given order."""
        return [pid for pid in pipeline_ids if backend in self.backends_of(pid)]

    def unplaced(self, pipeline_ids: Iterable[str]) -> list[str]:
        """The ids among ``pipeline_ids`` no placement matches (they run nowhere but locally by hand)."""
        return [pid for pid in pipeline_ids if not self.backends_of(pid)]

    def unmatched_patterns(self, pipeline_ids: Iterable[str]) -> list[tuple[int, int, str]]:
        """(placement index, pattern index, pattern) of placement patterns no pipeline matches: usually a typo."""
        ids = list(pipeline_ids)
        return [
            (i, j, pattern)
            for i, placement in enumerate(self.placements)
            for j, pattern in enumerate(placement.pipelines)
            if not any(fnmatch.fnmatchcase(pid, pattern) for pid in ids)
        ]

    # ------------------------------------------------------------------------------------------ teams

    def team_of(self, pipeline_id: str, declared: str | None = None) -> str | None:
        """The spec's own ``team:`` if set, else the first team whose patterns match, else None (admins only)."""
        if declared:
            return declared
        for name, team in self.teams.items():
            if matches(pipeline_id, team.pipelines):
                return name
        return None

    # ------------------------------------------------------------------------------------------ OpenLineage

    def namespace_of(self, backend: str) -> str:
        """The OpenLineage namespace an Airflow backend's provider sends (its own setting, else the backend name)."""
        found = self.backends.get(backend)
        if isinstance(found, AirflowBackend) and found.openlineage_namespace:
            return found.openlineage_namespace
        return backend

    def backend_of_namespace(self, namespace: str) -> str | None:
        """The Airflow backend whose OpenLineage events carry ``namespace`` (None: another producer)."""
        for name, backend in self.backends.items():
            if isinstance(backend, AirflowBackend) and self.namespace_of(name) == namespace:
                return name
        return None


def matches(pipeline_id: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(pipeline_id, pattern) for pattern in patterns)


def secret_names(value: str | None) -> list[str]:
    """The NAMEs of every ``${secret:NAME}`` inside ``value`` (a field or a URL)."""
    return [ref[len("${secret:") : -1] for ref in _EMBEDDED_REF.findall(value or "")]
