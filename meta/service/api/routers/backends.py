"""Backends with their observer's health. Never a credential: the URL loses any userinfo and the last error is
scrubbed of anything token- or password-like. A team's token sees every backend (they are shared), but the last
error has the names of pipelines it cannot see blanked, since an observer's error may quote a DAG's URL."""

from __future__ import annotations

from sqlalchemy.orm import Session

from meta.service.api.auth import Context, Principal, Viewer
from meta.service.api.routers.common import api_router, scrub
from meta.service.api.schemas import Backend, public_url
from meta.service.store import queries
from meta.service.store.orm import BackendRow

router = api_router("backends")
HIDDEN = "<another team's pipeline>"


def _error(row: BackendRow, hidden: list[str]) -> str | None:
    if row.last_error is None:
        return None
    message = row.last_error
    for name in hidden:
        message = message.replace(name, HIDDEN)
    return scrub(message)


def _hidden_pipelines(session: Session, principal: Principal) -> list[str]:
    if principal.team is None:
        return []
    names = {row.pipeline_id for row in queries.pipelines(session, None) if row.team != principal.team}
    return sorted(names, key=len, reverse=True)  # longest first: one name inside another is blanked whole


@router.get("/backends", response_model=list[Backend], summary="every backend and its health")
def list_backends(principal: Viewer, context: Context) -> list[Backend]:
    with context.store.reading() as session:
        hidden = _hidden_pipelines(session, principal)
        rows = {
            row.name: Backend.of(row).model_copy(update={"last_error": _error(row, hidden)})
            for row in queries.backends(session)
        }
    # Backends in the workspace that no observer has reported on yet are listed too, as "unknown".
    for name, spec in context.workspace.backends.items():
        if name not in rows:
            rows[name] = Backend(
                name=name,
                kind=spec.kind,
                url=public_url(getattr(spec, "url", "") or ""),
                health="unknown",
                last_success_at=None,
                last_error_at=None,
                last_error=None,
                lag_seconds=None,
                events_total=0,
                requests_total=0,
            )
    return [rows[name] for name in sorted(rows)]
