"""Folders that top-level imports may be found in, scoped to a context instead of written into ``sys.path``.

A spec file imports helpers that sit next to it (``import helpers`` in ``dags/sales.py``), and a pipeline's python
tasks name callables beside their spec (``jobs.extract:main`` next to ``dags/sales.yaml``), as in Airflow's dags
folder. Editing ``sys.path`` for that is process-wide and permanent: in a long-lived server, one pipeline's folder
would decide what another pipeline's ``import jobs`` finds. Instead, ``ScopedRootsFinder`` (installed once at the
*end* of ``sys.meta_path``, so a spec folder never shadows the standard library or installed packages, like an
appended ``sys.path`` entry) looks top-level names up in the roots of the *current context* only:

* ``import_roots(folders)``: a ``with`` block (``meta.authoring.dsl.load_python_file`` while it executes a spec);
* ``add_import_roots(folders)``: until the function it returns is called (the ``meta`` command: until it ends).

The roots live in a ``ContextVar``: a thread sees the roots of the context it runs in. Threads started with plain
``threading``/``ThreadPoolExecutor`` start with an empty context; code that hands work to such threads copies its
context (``contextvars.copy_context().run``) so the work sees the same roots. Forked children inherit them.

What this cannot scope: Python caches every imported module in ``sys.modules`` by name, process-wide. Once
``helpers`` was imported from one folder, an ``import helpers`` elsewhere gets that module. Two pipelines whose
folders hold *different* modules of the same top-level name need separate processes.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType

_roots: ContextVar[tuple[str, ...]] = ContextVar("meta_import_roots", default=())
_install_lock = threading.Lock()


class ScopedRootsFinder:
    """A ``sys.meta_path`` finder for top-level modules in the current context's import roots."""

    @classmethod
    def find_spec(
        cls, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        roots = _roots.get()
        if path is not None or not roots:  # submodules are found through their package's __path__
            return None
        return importlib.machinery.PathFinder.find_spec(fullname, list(roots), target)


def current_roots() -> tuple[str, ...]:
    """The import roots of the current context, first consulted first."""
    return _roots.get()


def _install() -> None:
    with _install_lock:
        if ScopedRootsFinder not in sys.meta_path:
            sys.meta_path.append(ScopedRootsFinder)


def _merged(folders: Iterable[str | Path]) -> tuple[str, ...]:
    current = _roots.get()
    extra = [str(Path(f).resolve()) for f in folders]
    return current + tuple(dict.fromkeys(f for f in extra if f not in current))


@contextlib.contextmanager
def import_roots(folders: Iterable[str | Path]) -> Iterator[None]:
    """Let top-level imports find modules in ``folders`` while the block runs (this context only)."""
    _install()
    token = _roots.set(_merged(folders))
    try:
        yield
    finally:
        _roots.reset(token)


def add_import_roots(folders: Iterable[str | Path]) -> Callable[[], None]:
    """Let top-level imports find modules in ``folders`` in the current context until the returned function is
    called (in the same context; the ``meta`` command calls it when the command ends)."""
    _install()
    token = _roots.set(_merged(folders))
    return lambda: _roots.reset(token)
