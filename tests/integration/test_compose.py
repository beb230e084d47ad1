"""The compose stack, run: its Airflow-to-control-plane OpenLineage wiring, and the whole stack with pytest-docker.

``test_the_compose_transport_reaches_a_real_control_plane`` needs no Docker: the Airflow image's entrypoint
(compose/airflow_entrypoint.py) builds the transport from the ingest-token secret that compose/init_secrets.py
writes, Airflow's own OpenLineage provider (the client its tasks use) sends an event with it, and a real
``meta serve`` whose workspace reads that secret the way compose/meta.yaml does stores it.

``test_the_stack_serves_the_control_plane_and_it_sees_airflow`` brings compose/docker-compose.yml up (pytest-docker,
``docker compose up --build -d``) where a Docker engine with Compose v2 can pull images, and checks the control
plane's ``/api/v1/health``, that it reports the stack's Airflow healthy, and Airflow's "meta" DAG tab. Where that is
not possible it is skipped with the reason, found in seconds and before anything is created (no image, no network):
no ``docker`` command, no engine answering ``docker info``, no Compose v2, or the base image cannot be pulled.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.control_plane import ServeProcess

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
BASE_IMAGE = "python:3.11-slim"  # every image of the stack builds FROM it (tests/unit/test_compose.py checks)
PROBE_TIMEOUT = 20.0
PULL_TIMEOUT = 90.0


def init_secrets(folder: Path) -> Path:
    done = subprocess.run(
        [sys.executable, str(COMPOSE / "init_secrets.py"), str(folder)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return folder


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ the OpenLineage transport, without Docker

EMIT = """
import sys, uuid
from datetime import datetime, timezone
from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

client = OpenLineageAdapter().get_or_create_openlineage_client()  # from AIRFLOW__OPENLINEAGE__TRANSPORT
event = RunEvent(
    eventType=RunState.START,
    eventTime=datetime.now(timezone.utc).isoformat(),
    run=Run(runId=str(uuid.uuid4())),
    job=Job(namespace="airflow", name=sys.argv[1]),
    producer="https://github.com/apache/airflow/tree/providers-openlineage",
)
client.emit(event)  # the HTTP transport raises on an answer that is not 2xx
"""


def emit_through_the_entrypoint(home: Path, url: str, token_file: Path, job: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "META_OPENLINEAGE_URL": url,
            "META_OPENLINEAGE_TOKEN_FILE": str(token_file),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "airflow",
        }
    )
    return subprocess.run(
        [sys.executable, str(COMPOSE / "airflow_entrypoint.py"), sys.executable, "-c", EMIT, job],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def stored_jobs(database: Path) -> list[str]:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT job_name FROM lineage_events")]


@pytest.mark.slow
def test_the_compose_transport_reaches_a_real_control_plane(tmp_path: Path) -> None:
    secrets = init_secrets(tmp_path / "secrets")
    (tmp_path / "ws" / "dags").mkdir(parents=True)
    workspace = tmp_path / "ws" / "meta.yaml"
    workspace.write_text(
        textwrap.dedent(
            """
            name: compose-lineage
            specs: [dags]
            backends:
              laptop: {kind: local}
            control_plane:
              ingest_token: ${secret:openlineage_ingest_token}  # as in compose/meta.yaml
            """
        )
    )
    home = tmp_path / "ws" / ".meta"
    serve = ServeProcess(workspace, {"META_HOME": str(home), "META_SECRETS_DIR": str(secrets)})
    try:
        serve.start()
        job = f"compose_check_{uuid.uuid4().hex[:8]}.task"
        sent = emit_through_the_entrypoint(tmp_path / "airflow", serve.url, secrets / "openlineage_ingest_token", job)
        assert sent.returncode == 0, sent.stderr[-3000:]
        assert stored_jobs(home / "control-plane.db") == [job]

        wrong = tmp_path / "wrong_token"
        wrong.write_text("meta_ingest_not-the-configured-one")
        refused = emit_through_the_entrypoint(tmp_path / "airflow", serve.url, wrong, job + "_refused")
        assert refused.returncode != 0 and "401" in refused.stderr, refused.stderr[-3000:]
        assert "meta_ingest_not-the-configured-one" not in refused.stderr + refused.stdout
        assert stored_jobs(home / "control-plane.db") == [job]
    finally:
        serve.stop()


# ------------------------------------------------------------------ the whole stack, with pytest-docker


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def docker_unavailable(docker: str | None, pull_timeout: float = PULL_TIMEOUT) -> str | None:
    """Why the stack cannot be brought up here (None: it can). Each probe is bounded, none creates anything."""
    if docker is None:
        return "no `docker` command on PATH"
    probes = [
        ([docker, "info", "--format", "{{.ServerVersion}}"], PROBE_TIMEOUT, "no Docker engine answers `docker info`"),
        ([docker, "compose", "version"], PROBE_TIMEOUT, "Docker Compose v2 (`docker compose`) is not installed"),
        ([docker, "pull", "--quiet", BASE_IMAGE], pull_timeout, f"the base image {BASE_IMAGE} cannot be pulled"),
    ]
    for command, timeout, what in probes:
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return f"{what}: `{' '.join(command[1:])}` did not finish within {timeout:.0f} s (no registry reachable?)"
        except OSError as exc:
            return f"{what}: {exc}"
        if done.returncode != 0:
            return f"{what}: {_last_line(done.stderr or done.stdout)}"
    return None


def test_the_docker_probe_names_the_missing_piece_quickly(tmp_path: Path) -> None:
    """The skip reasons, with a stand-in ``docker`` per failure (this machine has no engine to fail for real)."""
    assert docker_unavailable(None) == "no `docker` command on PATH"
    cases = {
        "info": ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.",
                 "no Docker engine answers `docker info`"),
        "compose": ("docker: unknown command: docker compose", "Docker Compose v2 (`docker compose`) is not installed"),
        "pull": ("Error response from daemon: Get https://registry/v2/: dial tcp: lookup registry: no such host",
                 f"the base image {BASE_IMAGE} cannot be pulled"),
    }  # fmt: skip
    for failing, (message, expected) in cases.items():
        stub = tmp_path / f"docker-{failing}"
        stub.write_text(f'#!/bin/sh\nif [ "$1" = {failing} ]; then echo "{message}" >&2; exit 1; fi\nexit 0\n')
        stub.chmod(0o755)
        assert docker_unavailable(str(stub)) == f"{expected}: {message}"
    hanging = tmp_path / "docker-hangs"
    hanging.write_text('#!/bin/sh\nif [ "$1" = pull ]; then exec sleep 30; fi\nexit 0\n')
    hanging.chmod(0o755)
    started = time.monotonic()
    reason = docker_unavailable(str(hanging), pull_timeout=1)
    assert time.monotonic() - started < 10
    timed_out = f"`pull --quiet {BASE_IMAGE}` did not finish within 1 s (no registry reachable?)"
    assert reason == f"the base image {BASE_IMAGE} cannot be pulled: {timed_out}"


@pytest.fixture(scope="session")
def compose_dir(
    tmp_path_factory: pytest.TempPathFactory, docker_compose_file: str, docker_compose_project_name: str
) -> Iterator[Path]:
    """Secrets and ports for the stack under test; skips (before anything is created) where it cannot run.

    Its teardown removes the stack even when ``up`` failed half-way (pytest-docker cleans up only after a
    successful start)."""
    docker = shutil.which("docker")
    reason = docker_unavailable(docker)
    if reason:
        pytest.skip(f"compose stack not started: {reason}")
    assert docker is not None
    folder = tmp_path_factory.mktemp("compose")
    init_secrets(folder / "secrets")
    ports = {"AIRFLOW_PORT": free_port(), "PREFECT_PORT": free_port(), "META_PORT": free_port()}
    lines = [f"META_COMPOSE_SECRETS={folder / 'secrets'}", *(f"{k}={v}" for k, v in ports.items())]
    (folder / "compose.env").write_text("\n".join(lines) + "\n")
    try:
        yield folder
    finally:
        compose = [docker, "compose", "--env-file", str(folder / "compose.env"), "-f", docker_compose_file]
        down = [*compose, "-p", docker_compose_project_name, "down", "-v", "--remove-orphans"]
        subprocess.run(down, capture_output=True, timeout=300, stdin=subprocess.DEVNULL)


# pytest-docker's fixtures, overridden (same session scope): the stack's file, its variables, a private project name
@pytest.fixture(scope="session")
def docker_compose_file() -> str:
    return str(COMPOSE / "docker-compose.yml")


@pytest.fixture(scope="session")
def docker_compose_command(compose_dir: Path) -> str:
    return f'docker compose --env-file "{compose_dir / "compose.env"}"'


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    return f"meta-test-{os.getpid()}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up --build -d"]  # not --wait: airflow-init exits once migrated, by design


def _answers(url: str, headers: dict[str, str] | None = None) -> dict | list | None:
    try:
        response = httpx.get(url, headers=headers, timeout=5)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


@pytest.mark.slow
@pytest.mark.timeout(3600)  # the first build installs Airflow, Prefect and meta into three images
def test_the_stack_serves_the_control_plane_and_it_sees_airflow(docker_services, docker_ip, compose_dir) -> None:
    meta = f"http://{docker_ip}:{docker_services.port_for('meta', 8765)}"
    docker_services.wait_until_responsive(lambda: _answers(f"{meta}/api/v1/health") is not None, timeout=900, pause=2)
    assert _answers(f"{meta}/api/v1/health")["status"] == "ok"  # type: ignore[index,call-overload]

    admin = {"Authorization": f"Bearer {(compose_dir / 'secrets' / 'meta_admin_token').read_text().strip()}"}

    def airflow_backend() -> dict | None:
        backends = _answers(f"{meta}/api/v1/backends", admin) or []
        found = [b for b in backends if isinstance(b, dict) and b.get("name") == "airflow"]
        return found[0] if found and found[0].get("health") == "ok" else None

    docker_services.wait_until_responsive(lambda: airflow_backend() is not None, timeout=600, pause=3)
    backend = airflow_backend()
    assert backend is not None and backend["kind"] == "airflow" and backend["url"] == "http://airflow-api:8080"

    # Airflow's UI plugin links to the control plane at the port the stack publishes it on
    airflow = f"http://{docker_ip}:{docker_services.port_for('airflow-api', 8080)}"
    password = json.loads((compose_dir / "secrets" / "airflow_passwords.json").read_text())["admin"]
    token = httpx.post(f"{airflow}/auth/token", json={"username": "admin", "password": password}, timeout=10)
    token.raise_for_status()
    plugins = httpx.get(
        f"{airflow}/api/v2/plugins", headers={"Authorization": f"Bearer {token.json()['access_token']}"}, timeout=10
    ).json()["plugins"]
    views = [v for p in plugins if p["name"] == "meta_ui" for v in p["external_views"]]
    meta_port = dict(line.split("=", 1) for line in (compose_dir / "compose.env").read_text().split())["META_PORT"]
    assert [v["href"] for v in views] == [
        f"http://localhost:{meta_port}/pipelines/{{DAG_ID}}",
        f"http://localhost:{meta_port}/pipelines/{{DAG_ID}}/runs/airflow/{{RUN_ID}}",
    ]
