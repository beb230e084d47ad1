"""The dashboard's pages: one HTML shell for every page path (the scripts route on ``location.pathname``) and its
static files, all written here, no CDN. The shell holds no data, so it needs no token; the scripts read the API
with the signed-in cookie (``/api/v1/session``) and send a browser that is not signed in to ``/login``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
# Scripts and styles from this server only: an injected string can never load or run anything.
# Framed only by this server and the workspace's Airflow UIs, whose DAG pages show the dashboard in a "meta" tab
# (plugins/meta_ui.py): any other site that frames it gets an error page instead.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors {ancestors}; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}
PAGES = ("/", "/login", "/graph", "/backends", "/pipelines/{rest:path}")

router = APIRouter(include_in_schema=False)


def airflow_origins(request: Request) -> list[str]:
    """scheme://host:port of every Airflow UI of the workspace (its ``ui_url``, else its ``url``)."""
    workspace = request.app.state.context.workspace
    origins = set()
    for backend in workspace.backends.values():
        if backend.kind != "airflow":
            continue
        parts = urlsplit(getattr(backend, "ui_url", None) or getattr(backend, "url", "") or "")
        if parts.scheme in ("http", "https") and parts.hostname:
            port = f":{parts.port}" if parts.port else ""
            origins.add(f"{parts.scheme}://{parts.hostname}{port}")
    return sorted(origins)


def shell(request: Request) -> FileResponse:
    ancestors = " ".join(["'self'", *airflow_origins(request)])
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": CSP.format(ancestors=ancestors)}
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=headers)


for page in PAGES:
    router.add_api_route(page, shell, methods=["GET"], name=f"page {page}")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
