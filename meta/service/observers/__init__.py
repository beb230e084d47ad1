"""Built-in observers, one module per backend kind (``airflow``, ``prefect``, ``local``), each exposing ``KIND``.

They reach backends over HTTP only (httpx; the Prefect websocket through ``websockets``), so the control plane
installs beside Airflow or beside Prefect without needing either.
"""
