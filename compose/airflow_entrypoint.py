"""Entrypoint of the compose stack's Airflow image: point Airflow's OpenLineage provider at the control plane.

With ``META_OPENLINEAGE_URL`` set (the control plane's base URL), builds ``AIRFLOW__OPENLINEAGE__TRANSPORT``: the
provider's HTTP transport to ``POST <url>/api/v1/lineage`` with the ingest token as ``api_key`` auth (sent as
``Authorization: Bearer <token>``). The token is read from a file, the compose secret
``/run/secrets/openlineage_ingest_token`` (``META_OPENLINEAGE_TOKEN_FILE``), so it is in no compose file and no
image. Then runs the command it was given (``airflow ...``). A transport set explicitly is left as it is.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import MutableMapping

TOKEN_FILE = "/run/secrets/openlineage_ingest_token"  # noqa: S105 - a path, not a token


def transport(url: str, token: str) -> dict[str, object]:
    """The OpenLineage client's HTTP transport configuration (openlineage-python's HttpConfig keys)."""
    return {
        "type": "http",
        "url": url.rstrip("/"),
        "endpoint": "api/v1/lineage",
        "auth": {"type": "api_key", "apiKey": token},
        "timeout": 5,
    }


def configure(env: MutableMapping[str, str]) -> None:
    url = env.get("META_OPENLINEAGE_URL", "").strip()
    if not url or env.get("AIRFLOW__OPENLINEAGE__TRANSPORT"):
        return
    path = env.get("META_OPENLINEAGE_TOKEN_FILE", TOKEN_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.read().strip()
    except OSError as exc:
        sys.exit(f"meta: cannot read the OpenLineage ingest token from {path}: {exc.strerror}")
    if not token:
        sys.exit(f"meta: the OpenLineage ingest token file {path} is empty")
    env["AIRFLOW__OPENLINEAGE__TRANSPORT"] = json.dumps(transport(url, token))


def main(argv: list[str]) -> None:
    if not argv:
        sys.exit("usage: airflow_entrypoint.py COMMAND [ARG...]")
    configure(os.environ)
    os.execvp(argv[0], argv)  # noqa: S606 - the container's command, as given


if __name__ == "__main__":
    main(sys.argv[1:])
