"""The dashboard's pages: one HTML shell for every page path (the scripts route on ``location.pathname``) and its
static files, all written here, no CDN. The shell holds no data, so it needs no token; the scripts read the API
with the signed-in cookie (``/api/v1/session``) and send a browser that is not signed in to ``/login``."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# Scripts and styles from this server only: an injected string can never load or run anything.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
PAGES = ("/", "/login", "/graph", "/backends", "/pipelines/{rest:path}")

router = APIRouter(include_in_schema=False)


def shell() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


for page in PAGES:
    router.add_api_route(page, shell, methods=["GET"], name=f"page {page}")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
