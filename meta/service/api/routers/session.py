"""The dashboard's sign-in: ``POST /api/v1/session`` takes an API token and keeps it in an HttpOnly cookie (the
page's scripts never hold it after that), ``GET`` says who is signed in, ``DELETE`` signs out.

Only tokens that may read (viewer, operator, admin) sign in. The cookie is SameSite=Strict, Secure when the page
came over https, and accepted on GET/HEAD only (``meta.service.api.auth``): a signed-in browser reads what its
token may read and changes nothing. A sign-in from another site's page (an Origin that is not this server) is
refused, so nobody can sign a browser in as them."""

from __future__ import annotations

from fastapi import HTTPException, Request, Response

from meta.service.api import tokens
from meta.service.api.auth import SESSION_COOKIE, Viewer, principal_of
from meta.service.api.routers.common import api_router
from meta.service.api.schemas import Problem, SessionRequest, SignedIn

router = api_router("session")
MAX_AGE = 12 * 3600  # a browser stays signed in for a working day


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    host = request.headers.get("host", "")
    return origin.split("://", 1)[-1] == host


@router.post(
    "/session",
    response_model=SignedIn,
    responses={403: {"model": Problem}},
    summary="sign the dashboard in with an API token (kept in an HttpOnly cookie)",
)
def sign_in(body: SessionRequest, request: Request, response: Response) -> SignedIn:
    if not _same_origin(request):
        raise HTTPException(403, "sign in from this server's own page")
    principal = principal_of(request, body.token)
    if principal.role not in tokens.RANKED:
        raise HTTPException(403, f"a {principal.role} token cannot sign in to the dashboard: use a viewer+ token")
    response.set_cookie(
        SESSION_COOKIE,
        body.token,
        max_age=MAX_AGE,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return SignedIn(name=principal.name, role=principal.role, team=principal.team)


@router.get("/session", response_model=SignedIn, summary="who the dashboard is signed in as")
def who(principal: Viewer) -> SignedIn:
    return SignedIn(name=principal.name, role=principal.role, team=principal.team)


@router.delete("/session", status_code=204, summary="sign the dashboard out", response_class=Response)
def sign_out() -> Response:
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
