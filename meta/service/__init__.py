"""The control plane's home (``meta serve``), empty until it is built. What goes where:

- ``meta.service.store``: SQLAlchemy 2 tables, query functions that take a session and upsert idempotently, Alembic
  migrations. SQLite by default, PostgreSQL supported.
- ``meta.service.observers``: one observer per backend kind (registered through a plugin hook like targets) turning
  backend facts into neutral run and task-attempt events; nothing downstream of them sees adapter types.
- ``meta.service.api``: the HTTP API and dashboard, behind the optional ``meta[server]`` extra.

It sits above the built-in plugins and below the CLI, and it talks to Airflow and Prefect only over their APIs.
Nothing here may hold process-global mutable state: one process serves many pipelines and teams at once.
"""
