"""The control plane (``meta serve``): every run on every backend in one place (docs/control-plane.md, ADR 0005).

- ``observers/``: one observer per backend kind (airflow, prefect, local; registered through ``register_observers``)
  turning backend facts into neutral ``RunEvent``s; ``observers/openlineage`` maps Airflow's OpenLineage pushes.
- ``runtime``: a poll thread (and a push thread) per backend; each batch and its cursor in one transaction.
- ``store/``: SQLAlchemy 2 models, query functions taking a session, Alembic migrations (SQLite or PostgreSQL).
- ``api/``: the FastAPI app (routers, tokens, auth), behind the optional ``meta-orchestrator[server]`` extra.
- ``connections``: workspace -> backend connections with secrets resolved; ``server``: the assembly and uvicorn;
  ``client``: the API client the CLI uses; ``context``: what the API and the runtime share in one process.

It sits above the built-in plugins and below the CLI, and it talks to Airflow and Prefect only over their APIs.
Nothing here holds process-global mutable state: one process serves many pipelines and teams at once.
"""
