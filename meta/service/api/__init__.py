"""The control plane's REST API (FastAPI, behind the ``meta-orchestrator[server]`` extra).

Layered like Prefect's server: ``schemas`` (pydantic, the wire), ``meta.service.store.orm`` (tables),
``meta.service.store.queries`` (functions taking a session), ``routers`` (HTTP). ``app.create_app(context)`` builds
one app per ``ServiceContext``; nothing here is process-global. Routes, roles and the trigger key: ``app.py``.
"""
