"""plugins/meta_ui.py on a real Airflow 3.3: the "meta" tab of every DAG page opens the control plane's pipeline page.

The session Airflow (tests/fixtures/airflow_server.py) has the plugin in its plugins folder,
``AIRFLOW__META__CONTROL_PLANE_URL`` set to the control plane's base URL (the port its tests run ``meta serve`` on)
and ``AIRFLOW__META__BACKEND_NAME`` to "airflow", which adds the tab to DAG run pages too.

How the href becomes a URL is Airflow's UI, not the plugin: its external-view iframe component (in the installed
bundle ``airflow/ui/dist/assets/index-*.js``; ``airflow-core/src/airflow/ui/src/pages/Iframe.tsx`` in Airflow's
source) takes ``href`` and, for any ``destination`` other than ``nav``, replaces ``{DAG_ID}`` with
``encodeURIComponent(dagId)`` (likewise ``{RUN_ID}``, ``{TASK_ID}``, ``{MAP_INDEX}``), then loads it in an iframe.
``test_the_tabs_open_the_pipeline_and_the_run`` drives the real UI in Chromium and reads that iframe's ``src``, so
the substitution checked is the UI's own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

import httpx
import pytest
from meta_airflow.remote import trigger, wait_for_dags, write_spec

from meta.spec.model import Pipeline

pytestmark = [pytest.mark.airflow]

REPO = Path(__file__).resolve().parents[3]
PLUGIN = REPO / "plugins" / "meta_ui.py"


def token(server, user: str = "admin") -> str:
    response = httpx.post(
        f"{server.url}/auth/token", json={"username": user, "password": server.password(user)}, timeout=10
    )
    response.raise_for_status()
    return response.json()["access_token"]


def meta_views(plugins: list[dict]) -> list[dict]:
    found = [p for p in plugins if p["name"] == "meta_ui"]
    assert len(found) == 1, f"plugin meta_ui not loaded once: {[p['name'] for p in plugins]}"
    return found[0]["external_views"]


def encode(value: str) -> str:
    """JavaScript's encodeURIComponent (for ASCII): what the UI puts in place of a placeholder."""
    return quote(value, safe="!~*'()")


def pipeline_page(base_url: str, dag_id: str) -> str:
    """The control plane's pipeline page for ``dag_id`` (the dashboard's URL contract: the id URL-encoded)."""
    return f"{base_url}/pipelines/{encode(dag_id)}"


def run_page(base_url: str, dag_id: str, backend: str, run_id: str) -> str:
    """The control plane's run page: ``/pipelines/<id>/runs/<backend name>/<run id>``."""
    return f"{pipeline_page(base_url, dag_id)}/runs/{encode(backend)}/{encode(run_id)}"


@pytest.mark.parametrize("user", ["admin", "viewer"])
def test_plugins_api_lists_the_meta_tab(airflow_server, user: str) -> None:
    base = airflow_server.env["AIRFLOW__META__CONTROL_PLANE_URL"]
    response = httpx.get(
        f"{airflow_server.url}/api/v2/plugins",
        headers={"Authorization": f"Bearer {token(airflow_server, user)}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    unset = {"icon": None, "icon_dark_mode": None, "category": None, "nav_top_level": False}
    backend = airflow_server.env["AIRFLOW__META__BACKEND_NAME"]
    assert meta_views(response.json()["plugins"]) == [
        {"name": "meta", "href": f"{base}/pipelines/{{DAG_ID}}", "destination": "dag", "url_route": "meta", **unset},
        {
            "name": "meta",
            "href": f"{base}/pipelines/{{DAG_ID}}/runs/{backend}/{{RUN_ID}}",
            "destination": "dag_run",
            "url_route": "meta-run",
            **unset,
        },
    ]
    assert "meta_ui" not in {e["source"].rsplit("/", 1)[-1].removesuffix(".py") for e in import_errors(airflow_server)}
    assert "meta UI plugin" not in airflow_server.log("api-server")  # configured: no warning


def import_errors(server) -> list[dict]:
    response = httpx.get(
        f"{server.url}/api/v2/plugins/importErrors",
        headers={"Authorization": f"Bearer {token(server)}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["import_errors"]


def open_tab(page, url: str, route: str) -> str:
    """Open ``url`` in the signed-in page, click the tab whose link ends in ``/plugin/<route>``: its iframe's src."""
    page.goto(url, wait_until="domcontentloaded")
    tab = page.locator(f'a[href$="/plugin/{route}"]')
    tab.wait_for(timeout=30_000)
    assert tab.inner_text().strip() == "meta"
    tab.click()
    frame = page.locator('iframe[title="meta"]')
    frame.wait_for(state="attached", timeout=30_000)
    assert unquote(page.url) == unquote(f"{url}/plugin/{route}")  # the UI shows the run id decoded in its URL
    return str(frame.get_attribute("src"))


@pytest.mark.slow
def test_the_tabs_open_the_pipeline_and_the_run(
    airflow_server, chromium
) -> None:  # chromium: tests/fixtures/browser.py

    dag_id = f"ui.tab-{uuid.uuid4().hex[:8]}"  # dots and dashes: what a pipeline id may hold beside letters
    run_id = f"ui:{uuid.uuid4().hex[:6]}+1~x"  # ':' and '+' are encoded by the UI, '~' is not
    spec = Pipeline.model_validate(
        {"id": dag_id, "tasks": [{"id": "t", "action": {"kind": "shell", "command": "true"}}]}
    )
    write_spec(airflow_server.specs_dir, spec)
    with airflow_server.client() as client:
        wait_for_dags(client, [dag_id], timeout=120)
        trigger(client, spec, {}, run_id)
    base = airflow_server.env["AIRFLOW__META__CONTROL_PLANE_URL"]
    backend = airflow_server.env["AIRFLOW__META__BACKEND_NAME"]

    context = chromium.new_context()
    try:
        # what Airflow's login sets after a SimpleAuthManager sign-in: the JWT in the `_token` cookie
        context.add_cookies([{"name": "_token", "value": token(airflow_server, "viewer"), "url": airflow_server.url}])
        page = context.new_page()
        dag_page = f"{airflow_server.url}/dags/{dag_id}"
        assert open_tab(page, dag_page, "meta") == pipeline_page(base, dag_id)
        run_url = f"{dag_page}/runs/{quote(run_id, safe='')}"
        assert open_tab(page, run_url, "meta-run") == run_page(base, dag_id, backend, run_id)
    finally:
        context.close()


def airflow_plugins(
    tmp_path: Path, control_plane_url: str | None, backend: str | None = None
) -> tuple[list[dict], str]:
    """``airflow plugins -o json --verbose`` of an Airflow whose plugins folder holds only plugins/meta_ui.py."""
    home = tmp_path / "home"
    (home / "plugins").mkdir(parents=True)
    shutil.copy(PLUGIN, home / "plugins" / PLUGIN.name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    if control_plane_url is not None:
        env["AIRFLOW__META__CONTROL_PLANE_URL"] = control_plane_url
    if backend is not None:
        env["AIRFLOW__META__BACKEND_NAME"] = backend
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run(
        # without --verbose the command mutes logging (airflow.utils.cli.suppress_logs_and_warning)
        [str(airflow), "plugins", "-o", "json", "--verbose"],
        env=env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    # --verbose also prints some log lines (py.warnings) on stdout; the JSON table is a line of its own
    table = [line for line in done.stdout.splitlines() if line.startswith("[")]
    assert len(table) == 1, done.stdout[-3000:]
    return json.loads(table[0]), done.stdout + done.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "[meta] control_plane_url is not set (environment variable AIRFLOW__META__CONTROL_PLANE_URL)"),
        ("", "[meta] control_plane_url is not set (environment variable AIRFLOW__META__CONTROL_PLANE_URL)"),
        ("meta.example.com:8765", "it must be an absolute http:// or https:// URL"),
        ("ftp://meta.example.com", "it must be an absolute http:// or https:// URL"),
        ("https://ops:s3cr3t-pw@meta.example.com", "it must not hold credentials"),
        ("https://meta.example.com/?x=1", "without a query string or fragment"),
        ("http://meta.example.com:port", "it is not a valid URL"),
    ],
)
def test_without_a_usable_url_it_warns_and_adds_no_tab(tmp_path: Path, value: str | None, problem: str) -> None:
    plugins, output = airflow_plugins(tmp_path, value)
    assert meta_views(plugins) == []
    warning = next((line for line in output.splitlines() if "meta UI plugin" in line), "")
    assert problem in warning, output[-3000:]
    assert "so DAG pages have no 'meta' tab" in warning
    assert "s3cr3t-pw" not in output


def test_a_path_prefix_is_kept_and_the_trailing_slash_dropped(tmp_path: Path) -> None:
    plugins, output = airflow_plugins(tmp_path, "https://ops.example.com/meta/")
    assert [v["href"] for v in meta_views(plugins)] == ["https://ops.example.com/meta/pipelines/{DAG_ID}"]
    assert "meta UI plugin" not in output  # no backend_name: no run tab, and nothing to warn about


def test_a_backend_name_adds_the_run_tab(tmp_path: Path) -> None:
    plugins, output = airflow_plugins(tmp_path, "https://meta.example.com", backend="airflow-prod_2")
    assert [(v["destination"], v["url_route"], v["href"]) for v in meta_views(plugins)] == [
        ("dag", "meta", "https://meta.example.com/pipelines/{DAG_ID}"),
        ("dag_run", "meta-run", "https://meta.example.com/pipelines/{DAG_ID}/runs/airflow-prod_2/{RUN_ID}"),
    ]
    assert "meta UI plugin" not in output


@pytest.mark.parametrize("backend", ["Airflow", "prod/airflow", "9airflow"])
def test_a_bad_backend_name_warns_and_adds_no_run_tab(tmp_path: Path, backend: str) -> None:
    plugins, output = airflow_plugins(tmp_path, "https://meta.example.com", backend=backend)
    assert [v["destination"] for v in meta_views(plugins)] == ["dag"]
    warning = next((line for line in output.splitlines() if "meta UI plugin" in line), "")
    assert "[meta] backend_name (environment variable AIRFLOW__META__BACKEND_NAME) is ignored" in warning, output
