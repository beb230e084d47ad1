"""meta's Airflow UI plugin: a "meta" tab on every DAG page, showing the control plane's page of that pipeline.

The tab is an Airflow 3 external view with ``destination: "dag"``. Airflow's UI renders it as a tab of the DAG
page (``/dags/<dag_id>/plugin/meta``) holding an iframe whose ``src`` is ``href`` with ``{DAG_ID}`` replaced by
``encodeURIComponent(dag_id)`` (the UI's external-view iframe component; the template is sent as is by
``GET /api/v2/plugins``). A meta pipeline's id is its dag_id, so the tab opens ``<control plane>/pipelines/<id>``:
the pipeline on every backend, not only on this Airflow.

Configuration, in Airflow's own config (so every Airflow config source works)::

    [meta]
    control_plane_url = https://meta.example.com     # env: AIRFLOW__META__CONTROL_PLANE_URL

The base URL the browser reaches ``meta serve`` at (a path prefix is kept). When it is missing or not an absolute
http(s) URL, the plugin logs a warning in each Airflow component that loads it and adds no tab, instead of a tab
showing a broken page. The plugin imports nothing of meta: it works in an Airflow without meta installed.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

SECTION = "meta"
OPTION = "control_plane_url"
ENV_VAR = f"AIRFLOW__{SECTION.upper()}__{OPTION.upper()}"
URL_ROUTE = "meta"  # the tab's path below the DAG page; unique among the installed plugins' views
PIPELINE_PATH = "/pipelines/{DAG_ID}"  # the control plane's pipeline page; the UI fills in {DAG_ID}


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


def control_plane_url() -> str | None:
    """``[meta] control_plane_url`` without its trailing slashes, or None (with a warning) when unusable."""
    value = (conf.get(SECTION, OPTION, fallback="") or "").strip()
    if not value:
        log.warning(
            "meta UI plugin: [%s] %s is not set (environment variable %s), so DAG pages have no 'meta' tab; "
            "set it to the URL of the meta control plane (`meta serve`)",
            SECTION,
            OPTION,
            ENV_VAR,
        )
        return None
    problem = url_problem(value)
    if problem:
        # the value itself is not logged: a misplaced credential must not reach the logs
        log.warning(
            "meta UI plugin: [%s] %s (environment variable %s) is ignored, so DAG pages have no 'meta' tab: %s",
            SECTION,
            OPTION,
            ENV_VAR,
            problem,
        )
        return None
    return value.rstrip("/")


def views_for(base_url: str | None) -> list[dict[str, Any]]:
    """The plugin's external views for a control plane at ``base_url`` (none without one)."""
    if base_url is None:
        return []
    return [
        {
            "name": "meta",
            "href": base_url + PIPELINE_PATH,
            "destination": "dag",
            "url_route": URL_ROUTE,
        }
    ]


class MetaUiPlugin(AirflowPlugin):
    name = "meta_ui"
    external_views = views_for(control_plane_url())
