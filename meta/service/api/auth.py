"""Who is calling: ``Authorization: Bearer <token>`` resolved to a :class:`Principal` (role and team).

Roles rank viewer < operator < admin, each per team; an admin token without a team spans every team. Two roles
stand apart: ``ingest`` may only POST OpenLineage events and ``metrics`` may only read ``/metrics``. A bootstrap
admin secret (the workspace's ``control_plane.admin_token``, resolved by the runtime) is accepted as a global
admin without a row in the store, so a fresh control plane can mint its first tokens.

The dashboard signs a browser in by putting its token in the HttpOnly ``meta_session`` cookie; that cookie is
accepted on GET and HEAD only, so it can read what the token may read and never change anything.

Failures: no, malformed, unknown or revoked token -> 401; a valid token whose role is too low -> 403. A resource
of another team answers 404 elsewhere (the routers), never 403, so names do not leak. No message holds the token.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from meta.service.api import tokens
from meta.service.context import ServiceContext

SESSION_COOKIE = "meta_session"  # the dashboard's sign-in: an API token in an HttpOnly cookie (routers/session.py)
bearer = HTTPBearer(auto_error=False, description="an API token (`meta token create`): `meta_...`")


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    team: str | None
    token_id: int | None = None  # None: the bootstrap admin

    @property
    def teams(self) -> frozenset[str] | None:
        """The teams this caller sees, in the form the query functions take (None: every team)."""
        return None if self.team is None else frozenset({self.team})

    def sees(self, team: str | None) -> bool:
        return self.team is None or team == self.team


def context_of(request: Request) -> ServiceContext:
    context: ServiceContext = request.app.state.context
    return context


def unauthorized(message: str) -> HTTPException:
    return HTTPException(status_code=401, detail=message, headers={"WWW-Authenticate": "Bearer"})


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    if credentials is not None:
        return principal_of(request, credentials.credentials)
    if request.headers.get("authorization"):
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    cookie = request.cookies.get(SESSION_COOKIE)
    # The dashboard's session cookie reads only: a page of another site cannot make the browser change anything
    # (SameSite=Strict keeps it off cross-site requests too).
    if cookie and request.method in ("GET", "HEAD"):
        return principal_of(request, cookie)
    raise unauthorized("this endpoint needs an API token: send 'Authorization: Bearer <token>'")


def principal_of(request: Request, secret: str) -> Principal:
    """The caller holding ``secret`` (a token or the bootstrap secrets); 401 when it is none of them."""
    bootstrap: str | None = request.app.state.bootstrap_admin_hash
    if bootstrap is not None and hmac.compare_digest(tokens.hash_token(secret), bootstrap):
        return Principal(name="bootstrap-admin", role="admin", team=None)
    ingest: str | None = getattr(request.app.state, "bootstrap_ingest_hash", None)
    if ingest is not None and hmac.compare_digest(tokens.hash_token(secret), ingest):
        return Principal(name="workspace-ingest", role="ingest", team=None)
    with context_of(request).store.reading() as session:
        row = tokens.verify(session, secret)
        if row is None:
            raise unauthorized("the API token is unknown or revoked")
        return Principal(name=row.name, role=row.role, team=row.team, token_id=row.id)


def require(*roles: str) -> Callable[..., Any]:
    """A dependency admitting callers with one of ``roles`` (a ranked role admits every role above it too)."""
    admitted = set(roles)
    wanted = " or ".join(f"{'an' if role[0] in 'aeiou' else 'a'} {role} token" for role in roles)
    if any(role in tokens.RANKED and role != "admin" for role in roles):
        wanted += " (or a higher role)"
    for role in roles:
        if role in tokens.RANKED:
            admitted.update(tokens.RANKED[tokens.RANKED.index(role) :])

    def dependency(
        request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> Principal:
        principal = authenticate(request, credentials)
        if principal.role not in admitted:
            raise HTTPException(status_code=403, detail=f"this endpoint needs {wanted}; this token is {principal.role}")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{'_'.join(roles)}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Operator = Annotated[Principal, Depends(require("operator"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Ingest = Annotated[Principal, Depends(require("ingest"))]
MetricsReader = Annotated[Principal, Depends(require("viewer", "metrics"))]
Context = Annotated[ServiceContext, Depends(context_of)]
