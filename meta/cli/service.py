"""The control plane's commands: ``serve``, ``status``, ``runs`` (over every backend), ``trigger`` and ``token``.

``status``, ``runs`` and ``trigger`` talk to the API of a running ``meta serve`` (``--api``/``META_API_URL``, else the
workspace's ``control_plane.url``/``listen``) with ``--token``/``META_API_TOKEN``. When no server answers they open
the store themselves and ask the very same API in-process as an admin: one code path reads the store, and whoever can
read the database file sees every team anyway.
"""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from meta import settings
from meta.cli.workspace_options import workspace_option
from meta.spec.errors import MetaError


def _loaded(workspace_path: Path | None) -> Any:
    from meta.cli.workspace_options import require_workspace

    return require_workspace(workspace_path)


def _plane(loaded: Any) -> Any:
    """The control plane of a loaded workspace: store opened (and migrated), observers built, not started."""
    from meta.authoring.workspace import declared_teams
    from meta.service.extra import require_server_extra

    require_server_extra()
    from meta.service.connections import database_url, resolve_connections
    from meta.service.server import ControlPlane

    pipelines = loaded.load_pipelines()
    return ControlPlane.open(
        loaded.workspace,
        resolve_connections(loaded, pipelines),
        database_url=database_url(loaded),
        declared_teams=declared_teams(loaded, pipelines.pipelines),
        pipelines=pipelines.pipelines,
    )


@contextmanager
def _store_only(workspace_path: Path | None) -> Iterator[Any]:
    """The control plane's store alone (token commands): no backend secret, no spec needed."""
    from meta.service.connections import database_url
    from meta.service.extra import require_server_extra
    from meta.service.store.db import open_store

    require_server_extra()
    store = open_store(database_url(_loaded(workspace_path)))
    try:
        yield store
    finally:
        store.close()


def in_process_api(plane: Any) -> Any:
    """The API app called in-process (no server running), authenticated as a one-off admin."""
    from fastapi.testclient import TestClient

    from meta.service.api.app import create_app
    from meta.service.client import ApiClient

    # No server keeps the store fresh: poll every backend once first, so the answer is current.
    for backend, health in plane.refresh().items():
        if health != "ok":
            click.echo(f"warning: backend {backend} is {health}; its runs are shown as last observed", err=True)
    # ... and judge every SLA once; the notices it owes are left to `meta serve` (a query never sends alerts)
    plane.sla(deliver=False).tick()
    plane.dependencies(act=False).tick()  # what waits for what; starting runs is left to `meta serve` too
    token = "meta_local_" + secrets.token_urlsafe(24)
    app = create_app(plane.context(), bootstrap_admin_token=token)
    client = ApiClient("in-process", token, http=TestClient(app, base_url="http://in-process/api/v1"))
    client.in_process = True  # an admin's view: every team
    return client


@contextmanager
def api(workspace_path: Path | None, api_url: str | None, token: str | None, loaded: Any = None) -> Iterator[Any]:
    from meta.service.client import ApiClient, is_serving, serving_store
    from meta.service.connections import database_url
    from meta.service.server import api_url as workspace_api_url
    from meta.service.store.db import fingerprint

    url = api_url or settings.api_url()
    token = token or settings.api_token()
    if url is None:
        loaded = loaded or _loaded(workspace_path)
        url = workspace_api_url(loaded.workspace)
        serving = serving_store(url)
        own = fingerprint(database_url(loaded))
        if serving not in (None, "", own):
            click.echo(f"note: the control plane at {url} serves another workspace's store; reading this one", err=True)
        if serving is None or serving not in ("", own):
            plane = _plane(loaded)
            client = in_process_api(plane)
            try:
                yield client
            finally:
                client.close()
                plane.close()
            return
    elif not is_serving(url):
        raise MetaError(f"no control plane answers at {url} (is `meta serve` running?)")
    remote = ApiClient(url, token)
    try:
        yield remote
    finally:
        remote.close()


def api_options(command: Any) -> Any:
    command = click.option("--token", help=f"API token (default: ${settings.API_TOKEN_ENV})")(command)
    command = click.option(
        "--api",
        "api_url",
        metavar="URL",
        help=f"control plane URL (default: ${settings.API_URL_ENV}, else the workspace's; no server: read the "
        "store directly)",
    )(command)
    return workspace_option(command)


# ---------------------------------------------------------------------------------------------- serve


@click.command()
@workspace_option
@click.option("--listen", metavar="HOST:PORT", help="default: the workspace's control_plane.listen (127.0.0.1:8765)")
def serve(workspace_path: Path | None, listen: str | None) -> None:
    """Run the control plane: observe every backend of the workspace and serve the API.

    Progress and each backend's health go to stderr. SIGTERM or Ctrl-C stops it cleanly."""
    import logging

    from meta.service.connections import control_plane_secret
    from meta.service.server import listen_address
    from meta.service.server import serve as run_server

    logging.basicConfig(level=logging.INFO, format="meta serve: %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "httpcore", "websockets", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    loaded = _loaded(workspace_path)
    host, port = listen_address(loaded.workspace) if listen is None else _split_listen(listen)
    plane = _plane(loaded)
    run_server(
        plane,
        host=host,
        port=port,
        admin_token=control_plane_secret(loaded, "admin_token"),
        ingest_token=control_plane_secret(loaded, "ingest_token"),
    )


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise click.BadParameter(f"expected HOST:PORT like 127.0.0.1:8765, got {listen!r}", param_hint="--listen")
    return host, int(port)


# ---------------------------------------------------------------------------------------------- status / runs


def _when(value: str | None) -> str:
    if not value:
        return "-"
    moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


@click.command()
@click.argument("pipeline", required=False)
@api_options
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of a table")
def status(
    pipeline: str | None, workspace_path: Path | None, api_url: str | None, token: str | None, as_json: bool
) -> None:
    """One table: every pipeline on every backend, its last run and state (only PIPELINE's, when given, followed
    by what it waits for: see `meta why`).

    Pipelines placed in the workspace but never seen on their backend are listed too ("no runs yet")."""
    from meta.cli.workspace_options import workspace_path as find

    found = find(workspace_path)
    loaded = _loaded(found) if found is not None and not (api_url or settings.api_url()) else None
    waits = None
    with api(workspace_path, api_url, token, loaded) as client:
        pipelines = client.get("/pipelines")
        if pipeline is not None:
            waits = _dependencies_or_none(client, pipeline)
    seen = {(p["id"], b["backend"]) for p in pipelines for b in p["backends"]}
    # Placed but not observed yet (deployed recently, or not at all): only in the in-process admin view, since a
    # team's token must not be shown other teams' placements.
    if loaded is not None and getattr(client, "in_process", False):
        loaded_pipelines = loaded.load_pipelines().pipelines
        declared = {p.id: p.team for p in loaded_pipelines}
        for p in loaded_pipelines:
            missing = [b for b in loaded.workspace.backends_of(p.id) if (p.id, b) not in seen]
            if missing:
                team = loaded.workspace.team_of(p.id, declared.get(p.id))
                pipelines.append(
                    {
                        "id": p.id,
                        "team": team,
                        "external": False,
                        "backends": [{"backend": b, "latest_run": None} for b in missing],
                    }
                )
    if pipeline is not None:
        pipelines = [p for p in pipelines if p["id"] == pipeline]
        if not pipelines and waits is None:
            raise MetaError(f"pipeline {pipeline!r} is neither observed on a backend nor placed in the workspace")
    if as_json:
        click.echo(
            json.dumps(pipelines if waits is None else {"pipelines": pipelines, "dependencies": waits}, indent=2)
        )
        return
    rows = []
    for p in sorted(pipelines, key=lambda p: (p.get("team") or "", p["id"])):
        for b in p["backends"]:
            last = b.get("latest_run") or {}
            rows.append(
                [
                    p["id"] + (" (external)" if b.get("external") else ""),
                    p.get("team") or "-",
                    b["backend"],
                    last.get("run_id", "no runs yet"),
                    last.get("state", "-"),
                    _when(last.get("started_at")),
                    _when(last.get("ended_at")),
                ]
            )
    if not rows:
        click.echo("no pipelines observed yet (is `meta serve` running? are pipelines placed and deployed?)")
        return
    click.echo(_table(["pipeline", "team", "backend", "last run", "state", "started (UTC)", "ended (UTC)"], rows))
    if waits is not None and (waits["upstreams"] or waits["downstreams"]):
        from meta.cli.dependency_text import explain

        click.echo("\n" + explain(waits))


def _dependencies_or_none(client: Any, pipeline: str) -> Any:
    from meta.service.client import ApiError

    try:
        return client.get(f"/pipelines/{pipeline}/dependencies", limit=5)
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise


@click.command()
@api_options
@click.option("--team", help="only this team's pipelines")
@click.option("--backend", help="only this backend")
@click.option("--pipeline", help="only this pipeline (or dataset:<uri>)")
@click.option("--window", default=24.0, show_default=True, metavar="HOURS", help="how far back misses count")
@click.option("--json", "as_json", is_flag=True, help="print the board as JSON")
def sla(
    workspace_path: Path | None,
    api_url: str | None,
    token: str | None,
    team: str | None,
    backend: str | None,
    pipeline: str | None,
    window: float,
    as_json: bool,
) -> None:
    """The SLA board: what is at risk now, what was missed (last 24 h by default), and a summary per team.

    States: met, at_risk (projected late from recent durations, or most of the time gone), missed (recorded once,
    when the backend's own facts show the deadline passed), unknown (the backend has not answered since the
    deadline), pending. Without a running `meta serve`, every backend is polled once and judged in-process
    (alerts are left to the server)."""
    with api(workspace_path, api_url, token) as client:
        board = client.get("/slas", team=team, backend=backend, pipeline=pipeline, window_hours=window)
    if as_json:
        click.echo(json.dumps(board, indent=2))
        return
    click.echo(_sla_report(board))


def _sla_report(board: dict[str, Any]) -> str:
    cells = board["cells"]
    if not cells:
        return "no SLA judged yet (are pipelines with an sla placed, or slas: entries in the workspace?)"
    counts = board["counts"]
    summary = ", ".join(
        f"{counts.get(s, 0)} {s.replace('_', ' ')}" for s in ("missed", "at_risk", "unknown", "met", "pending")
    )
    out = [f"SLA board at {_when(board['as_of'])} UTC (misses of the last {board['window_hours']:g} h): {summary}"]
    risky = [(c, s) for c in cells for s in c["attention"] if s["state"] in ("at_risk", "unknown")]
    missed = [(c, s) for c in cells for s in c["missed"]]
    sections = (
        ("At risk now", risky, ["state", "why"], lambda s: [s["state"], s["detail"]]),
        (
            f"Missed (last {board['window_hours']:g} h)",
            missed,
            ["recorded", "recovered", "detail"],
            lambda s: [_when(s["missed_at"]), _when(s["resolved_at"]), s["detail"]],
        ),
    )
    for title, found, headers, tail in sections:
        out += ["", title]
        rows = [
            [c["team"] or "-", c["pipeline"], c["backend"], s["kind"], s["slot"], _when(s["deadline"]), *tail(s)]
            for c, s in found
        ]
        out.append(
            _table(["team", "pipeline", "backend", "sla", "slot", "deadline (UTC)", *headers], rows)
            if rows
            else "nothing"
        )
    teams: dict[str, dict[str, int]] = {}
    for c in cells:
        row = teams.setdefault(c["team"] or "-", {})
        row[c["state"]] = row.get(c["state"], 0) + 1
        row["misses"] = row.get("misses", 0) + c["missed_in_window"]
    out += ["", "By team (pipelines on backends)"]
    out.append(
        _table(
            ["team", "missed", "at risk", "unknown", "met", "pending", f"misses ({board['window_hours']:g} h)"],
            [
                [
                    name,
                    *(str(row.get(s, 0)) for s in ("missed", "at_risk", "unknown", "met", "pending")),
                    str(row["misses"]),
                ]
                for name, row in sorted(teams.items())
            ],
        )
    )
    return "\n".join(out)


def list_runs_everywhere(
    workspace_path: Path | None,
    api_url: str | None,
    token: str | None,
    *,
    backend: str | None,
    pipeline_id: str | None,
    state: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """``meta runs`` with a workspace: runs on every backend through the control plane."""
    with api(workspace_path, api_url, token) as client:
        page = client.get("/runs", backend=backend, pipeline=pipeline_id, state=state, limit=limit)
    runs = page["runs"]
    if as_json:
        click.echo(json.dumps(runs, indent=2))
        return
    if not runs:
        click.echo("no runs match")
        return
    rows = [
        [
            r["backend"],
            r["pipeline_id"],
            r["run_id"],
            r["state"],
            r.get("raw_state") or "-",
            _when(r.get("started_at")),
            _when(r.get("ended_at")),
        ]
        for r in runs
    ]
    click.echo(_table(["backend", "pipeline", "run", "state", "backend state", "started (UTC)", "ended (UTC)"], rows))
    if page.get("next_cursor"):
        click.echo(f"(more: raise --limit; showing the newest {len(runs)})")


# ---------------------------------------------------------------------------------------------- trigger


@click.command()
@click.argument("pipeline_id")
@api_options
@click.option("--backend", help="which backend, when the pipeline is placed on several")
@click.option("--param", "param_pairs", multiple=True, metavar="NAME=VALUE", help="run parameter (repeatable)")
@click.option(
    "--key",
    help="idempotency key: the same key never starts a second run (default: a new one per invocation)",
)
def trigger(
    pipeline_id: str,
    workspace_path: Path | None,
    api_url: str | None,
    token: str | None,
    backend: str | None,
    param_pairs: tuple[str, ...],
    key: str | None,
) -> None:
    """Start a run of PIPELINE_ID on its backend (Airflow: a deterministic dag_run_id; Prefect: an idempotency key)."""
    params: dict[str, Any] = {}
    for pair in param_pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint="--param")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    body: dict[str, Any] = {"params": params}
    if backend:
        body["backend"] = backend
    body["key"] = key or f"manual__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}_{secrets.token_hex(4)}"
    with api(workspace_path, api_url, token) as client:
        result = client.post(f"/pipelines/{pipeline_id}/trigger", body)
    verb = "started" if result.get("created") else "already started earlier (same key)"
    click.echo(f"{pipeline_id} on {result['backend']}: run {result['run_id']} {verb}")
    if result.get("url"):
        click.echo(result["url"])


# ---------------------------------------------------------------------------------------------- tokens


@click.group()
def token() -> None:
    """Create, list and revoke API tokens (directly in the control plane's store)."""


@token.command("create")
@workspace_option
@click.option("--name", required=True, help="who or what uses it (shown in lists, never the token itself)")
@click.option("--role", type=click.Choice(["viewer", "operator", "admin", "ingest", "metrics"]), required=True)
@click.option("--team", help="the team it may see (required for viewer and operator; none for ingest/metrics)")
def token_create(workspace_path: Path | None, name: str, role: str, team: str | None) -> None:
    """Print a new token once (only its hash is stored)."""
    from meta.service.api import tokens

    try:
        with _store_only(workspace_path) as store, store.transaction() as session:
            created = tokens.create(session, name=name, role=role, team=team)
    except tokens.TokenError as exc:
        raise MetaError(str(exc)) from None
    click.echo(created.secret)
    click.echo(
        f"token {created.row.id} ({role}{' of ' + team if team else ''}) created; it is shown only now", err=True
    )


@token.command("list")
@workspace_option
def token_list(workspace_path: Path | None) -> None:
    """Every token: id, name, role, team, when created and revoked (never the token itself)."""
    from meta.service.api import tokens

    with _store_only(workspace_path) as store, store.reading() as session:
        table = [
            [
                str(r.id),
                r.name,
                r.role,
                r.team or "*",
                _when(r.created_at.isoformat()),
                _when(r.revoked_at.isoformat()) if r.revoked_at else "-",
            ]
            for r in tokens.listed(session)
        ]
    click.echo(_table(["id", "name", "role", "team", "created", "revoked"], table))


@token.command("revoke")
@workspace_option
@click.argument("token_id", type=int)
def token_revoke(workspace_path: Path | None, token_id: int) -> None:
    """Revoke token TOKEN_ID (see `meta token list`): it is refused from then on."""
    from meta.service.api import tokens

    with _store_only(workspace_path) as store, store.transaction() as session:
        revoked = tokens.revoke(session, token_id)
    if revoked is None:
        raise MetaError(f"no token with id {token_id} (see `meta token list`)")
    click.echo(f"token {token_id} revoked")


COMMANDS = (serve, status, trigger, token)
