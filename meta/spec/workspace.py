"""The workspace file (``meta.yaml`` at a project root): which backends exist, which pipelines run where, who may see
what, and how the control plane runs. Pipeline specs stay backend-neutral; placement lives here.

Credentials appear only as ``${secret:NAME}`` references (resolved at run time by meta's secret providers, never
stored, logged or returned). Frozen, ``extra="forbid"``, like the pipeline model.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from meta.spec.model import Duration, Identifier, Model

SECRET_REF = re.compile(r"^\$\{secret:[A-Za-z0-9_.\-/]+\}$")
NAME_PATTERN = r"^[a-z][a-z0-9_\-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, min_length=1, max_length=63)]
# A pipeline id or a glob over them ("sales_*"); external DAG/flow names are matched the same way.
PipelinePattern = Annotated[str, Field(min_length=1, max_length=250, pattern=r"^[A-Za-z0-9_.\-*?\[\]]+$")]


def _secret_ref(value: str | None, field: str) -> str | None:
    if value is not None and not SECRET_REF.match(value):
        # Never echo the value: it is probably the credential itself.
        raise ValueError(f"{field} must be a secret reference like '${{secret:NAME}}', not a literal value")
    return value


class BackendBase(Model):
    description: str | None = None


class AirflowBackend(BackendBase):
    kind: Literal["airflow"]
    url: Annotated[str, Field(pattern=r"^https?://", description="the API server, e.g. http://127.0.0.1:8080")]
    username: str | None = None
    password: str | None = Field(default=None, description="'${secret:NAME}'")
    specs_dir: str | None = Field(default=None, description="the folder meta's loader DAG reads specs from")
    openlineage_namespace: str | None = Field(
        default=None, description="the namespace this instance's OpenLineage provider sends (default: backend name)"
    )
    ui_url: str | None = None

    @field_validator("password")
    @classmethod
    def _password_is_secret(cls, value: str | None) -> str | None:
        return _secret_ref(value, "password")


class PrefectBackend(BackendBase):
    kind: Literal["prefect"]
    url: Annotated[str, Field(pattern=r"^https?://", description="the API, e.g. http://127.0.0.1:4200/api")]
    auth: str | None = Field(default=None, description="'${secret:NAME}' holding PREFECT_API_AUTH_STRING (user:pw)")
    work_pool: str | None = Field(default=None, description="the work pool deployments go to")
    ui_url: str | None = None

    @field_validator("auth")
    @classmethod
    def _auth_is_secret(cls, value: str | None) -> str | None:
        return _secret_ref(value, "auth")


class LocalBackend(BackendBase):
    kind: Literal["local"]
    state_dir: str | None = Field(default=None, description="the local runner's state directory (default: META_HOME)")


Backend = Annotated[AirflowBackend | PrefectBackend | LocalBackend, Field(discriminator="kind")]


class Placement(Model):
    """``pipelines`` (ids or globs) run on ``backend``; a pipeline may be placed on several backends."""

    backend: Name
    pipelines: tuple[PipelinePattern, ...] = Field(min_length=1)


class Team(Model):
    """A team owns the pipelines matching ``pipelines`` (meta-built or external), plus those whose spec says
    ``team: <this team>``."""

    pipelines: tuple[PipelinePattern, ...] = ()
    description: str | None = None


class ControlPlane(Model):
    database: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite in the state directory (control-plane.db)"
    )
    listen: Annotated[str, Field(pattern=r"^[^:\s]+:\d{1,5}$")] = "127.0.0.1:8765"
    url: str | None = Field(default=None, description="how clients reach the API (default: http://<listen>)")
    poll_interval: Duration = timedelta(seconds=10)
    ingest_token: str | None = Field(default=None, description="'${secret:NAME}': the OpenLineage ingest token")
    admin_token: str | None = Field(default=None, description="'${secret:NAME}': a bootstrap admin API token")

    @field_validator("ingest_token", "admin_token")
    @classmethod
    def _tokens_are_secrets(cls, value: str | None) -> str | None:
        return _secret_ref(value, "tokens")

    @field_validator("poll_interval")
    @classmethod
    def _sane_interval(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=0.2) <= value <= timedelta(hours=1):
            raise ValueError("poll_interval must be between 0.2s and 1h")
        return value


class Workspace(Model):
    name: Identifier = "workspace"
    specs: tuple[str, ...] = Field(default=("dags",), description="folders or files of pipeline specs")
    backends: dict[Name, Backend] = Field(default_factory=dict)
    placements: tuple[Placement, ...] = ()
    teams: dict[Name, Team] = Field(default_factory=dict)
    control_plane: ControlPlane = Field(default_factory=ControlPlane)

    @model_validator(mode="after")
    def _placements_name_backends(self) -> Workspace:
        unknown = sorted({p.backend for p in self.placements} - set(self.backends))
        if unknown:
            raise ValueError(
                f"placements name unknown backend(s) {', '.join(unknown)}; "
                f"defined: {', '.join(sorted(self.backends)) or 'none'}"
            )
        return self

    def backends_of(self, pipeline_id: str) -> list[str]:
        """The backends ``pipeline_id`` is placed on, in workspace order, each once."""
        placed: list[str] = []
        for placement in self.placements:
            if placement.backend not in placed and matches(pipeline_id, placement.pipelines):
                placed.append(placement.backend)
        return placed

    def team_of(self, pipeline_id: str, declared: str | None = None) -> str | None:
        """The spec's own ``team:`` if set, else the first team whose patterns match, else None (admins only)."""
        if declared:
            return declared
        for name, team in self.teams.items():
            if matches(pipeline_id, team.pipelines):
                return name
        return None


def matches(pipeline_id: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(pipeline_id, pattern) for pattern in patterns)
