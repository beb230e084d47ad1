"""Per-thread stdout capture, so in-process python tasks running in parallel each write to their own log file.

``sys.stdout`` is replaced (once) by a proxy that writes to the current thread's target if it has one and to the
original stream otherwise. ``contextlib.redirect_stdout`` cannot do this: it swaps the stream for every thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

_local = threading.local()
_install_lock = threading.Lock()


class _ThreadStdout:
    def __init__(self, fallback: TextIO):
        self._fallback = fallback

    def _target(self) -> TextIO:
        return getattr(_local, "target", None) or self._fallback

    def write(self, text: str) -> int:
        return self._target().write(text)

    def writelines(self, lines: Any) -> None:
        self._target().writelines(lines)

    def flush(self) -> None:
        self._target().flush()

    def isatty(self) -> bool:
        return self._target().isatty()

    def __getattr__(self, name: str) -> Any:  # encoding, fileno, ... of the real stream
        return getattr(self._fallback, name)


def _install() -> None:
    with _install_lock:
        if not isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = _ThreadStdout(sys.stdout)


@contextmanager
def capture_stdout(target: TextIO) -> Iterator[None]:
    """While active, ``print`` in this thread writes to ``target``; other threads are unaffected."""
    if target is sys.stdout:
        yield
        return
    _install()
    previous = getattr(_local, "target", None)
    _local.target = target
    try:
        yield
    finally:
        _local.target = previous
