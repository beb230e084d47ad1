"""meta's Airflow UI plugin: a "meta" tab on every DAG page, showing the control plane's page of that pipeline.

The tab is an Airflow 3 external view with ``destination: "dag"``. Airflow's UI renders it as a tab of the DAG
page (``/dags/<dag_id>/plugin/meta``) holding an iframe whose ``src`` is ``href`` with ``{DAG_ID}`` replaced by
``encodeURIComponent(dag_id)`` (the UI's external-view iframe component; the template is sent as is by
``GET /api/v2/plugins``). A meta pipeline's id is its dag_id, so the tab opens ``<control plane>/pipelines/<id>``:
the pipeline on every backend, not only on this Airflow.

Configuration, in Airflow's own config (so every Airflow config source works)::

    [meta]
    control_plane_url = https://meta.example.com     # env: AIRFLOW__META__CONTROL_PLANE_URL
    backend_name = airflow-prod                      # env: AIRFLOW__META__BACKEND_NAME (optional)

``control_plane_url`` is the base URL the browser reaches ``meta serve`` at (a path prefix is kept). When it is
missing or not an absolute http(s) URL, the plugin logs a warning in each Airflow component that loads it and adds
no tab, instead of a tab showing a broken page. ``backend_name``, this Airflow's name in the workspace, adds the
same tab to every DAG run page (``destination: "dag_run"``, ``{RUN_ID}`` filled in likewise), opening the run's
page ``<control plane>/pipelines/<id>/runs/<backend_name>/<run id>`` (the control plane keeps Airflow's run id).
The plugin imports nothing of meta: it works in an Airflow without meta installed.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

SECTION = "meta"
OPTION = "control_plane_url"
BACKEND_OPTION = "backend_name"
URL_ROUTE = "meta"  # the tab's path below the DAG page; unique among the installed plugins' views
RUN_URL_ROUTE = "meta-run"  # below the DAG run page
PIPELINE_PATH = "/pipelines/{DAG_ID}"  # the control plane's pipeline page; the UI fills in {DAG_ID}
RUN_PATH = "/runs/{backend}/{RUN_ID}"  # below the pipeline page: its run page; the UI fills in {RUN_ID}
BACKEND_NAME = re.compile(r"^[a-z][a-z0-9_\-]*$")  # a workspace's backend names (docs/workspace.md)


def env_var(option: str) -> str:
    return f"AIRFLOW__{SECTION.upper()}__{option.upper()}"


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be the control plane's base URL, or None when it can."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as exc:
        return f"it is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "it must be an absolute http:// or https:// URL, such as https://meta.example.com"
    if parts.username is not None or parts.password is not None:
        return "it must not hold credentials (the URL is sent to every browser)"
    if parts.query or parts.fragment:
        return "it must be the base URL only, without a query string or fragment"
    return None


def _option(option: str) -> str:
    return (conf.get(SECTION, option, fallback="") or "").strip()


def control_plane_url() -> str | None:
    """``[meta] control_plane_url`` without its trailing slashes, or None (with a warning) when unusable."""
    value = _option(OPTION)
    if not value:
        log.warning(
            "meta UI plugin: [%s] %s is not set (environment variable %s), so DAG pages have no 'meta' tab; "
            "set it to the URL of the meta control plane (`meta serve`)",
            SECTION,
            OPTION,
            env_var(OPTION),
        )
        return None
    problem = url_problem(value)
    if problem:
        # the value itself is not logged: a misplaced credential must not reach the logs
        log.warning(
            "meta UI plugin: [%s] %s (environment variable %s) is ignored, so DAG pages have no 'meta' tab: %s",
            SECTION,
            OPTION,
            env_var(OPTION),
            problem,
        )
        return None
    return value.rstrip("/")


def backend_name() -> str | None:
    """``[meta] backend_name``, or None when unset (no run tab) or not a backend name (a warning, no run tab)."""
    value = _option(BACKEND_OPTION)
    if value and not BACKEND_NAME.match(value):
        log.warning(
            "meta UI plugin: [%s] %s (environment variable %s) is ignored, so DAG run pages have no 'meta' tab: "
            "a workspace backend name is lower-case letters, digits, '_' and '-', starting with a letter",
            SECTION,
            BACKEND_OPTION,
            env_var(BACKEND_OPTION),
        )
        return None
    return value or None


def views_for(base_url: str | None, backend: str | None = None) -> list[dict[str, Any]]:
    """The plugin's external views for a control plane at ``base_url`` (none without one)."""
    if base_url is None:
        return []
    views: list[dict[str, Any]] = [
        {"name": "meta", "href": base_url + PIPELINE_PATH, "destination": "dag", "url_route": URL_ROUTE}
    ]
    if backend is not None:
        run_href = base_url + PIPELINE_PATH + RUN_PATH.replace("{backend}", quote(backend, safe=""))
        views.append({"name": "meta", "href": run_href, "destination": "dag_run", "url_route": RUN_URL_ROUTE})
    return views


class MetaUiPlugin(AirflowPlugin):
    name = "meta_ui"
    external_views = views_for(control_plane_url(), backend_name())
