"""``${secret:NAME}`` references, resolved at run time by a chain of providers, and redaction of resolved values.

Providers are consulted in order; the first that knows the name wins:
  1. runtime providers pushed by a backend while a task runs (Airflow connections/variables, Prefect Secret blocks);
  2. providers registered by plugins (``register_secret_providers``): meta's own are ``env`` then ``file``.

Runtime providers are per task, not per process: they live in a ``ContextVar``, so two tasks running at once on
different threads (the local runner's pool, Airflow's or Prefect's task threads) each see only their own backend's
provider. A thread started with plain ``threading``/``ThreadPoolExecutor`` starts with an empty context, so a backend
pushes its provider inside the thread that runs the task (``meta_airflow.secret_provider.airflow_secrets``,
``meta_prefect.tasks.prefect_secrets``); a forked child (a task with a timeout) inherits the forking thread's.

Every value resolved here (and every value passed to ``mark_sensitive``) is remembered so that ``redact`` can
replace it by ``***`` in log records (``RedactingFilter``, installed on the log-record factory) and in exception
messages (``redact_exception`` / ``redacting``). That set is deliberately process-wide, the one shared state kept
here: a secret resolved for one task must not appear in *any* log line or error of the process, whichever thread or
pipeline prints it, and log handlers are process-wide too. Sharing it is safe because it only ever hides text
(it never changes what a task receives), it is append-only under a lock, and its values never leave the process.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from meta import settings
from meta.plugins.protocols import SecretProvider as SecretProvider  # the hook's type, one definition
from meta.spec.errors import MetaError

SECRET_NAME = r"[A-Za-z_][A-Za-z0-9_.\-/]*"  # noqa: S105 - a pattern, not a password
SECRET_REF = re.compile(r"\$\{secret:(" + SECRET_NAME + r")\}")
MASK = "***"
# Values shorter than this are not redacted: masking "a" or "1" everywhere would garble logs without protecting much.
MIN_REDACT_LENGTH = 4


class SecretNotFound(MetaError, LookupError):
    """No provider in the chain knows a ``${secret:NAME}``."""


class EnvSecretProvider:
    """``META_SECRET_<NAME>``: the name upper-cased, every character outside [A-Za-z0-9] replaced by ``_``."""

    name = "env"

    def get(self, name: str) -> str | None:
        return settings.secret(name)

    def describe(self, name: str) -> str:
        return f"environment variable {settings.secret_variable(name)}"


class FileSecretProvider:
    """A file named like the secret in ``$META_SECRETS_DIR`` (default ``$META_HOME/secrets``), Docker/K8s style.

    One trailing newline is stripped (editors add one). Names with ``/`` map to sub-directories; ``..`` is refused.
    """

    name = "file"

    def __init__(self, directory: str | Path | None = None):
        self._directory = Path(directory) if directory is not None else None

    def directory(self) -> Path:
        if self._directory is not None:
            return self._directory
        return settings.secrets_dir()

    def get(self, name: str) -> str | None:
        if ".." in name.split("/"):
            return None
        path = self.directory() / name
        if not path.is_file():
            return None
        value = path.read_text(encoding="utf-8")
        return value[:-1] if value.endswith("\n") else value

    def describe(self, name: str) -> str:
        return f"file {self.directory() / name}"


# -------------------------------------------------------------------------------------------- the chain

# The runtime providers of the task running in this context (thread), innermost first.
_runtime_providers: ContextVar[tuple[SecretProvider, ...]] = ContextVar("meta_secret_runtime_providers", default=())
_lock = threading.Lock()  # guards the redaction set below


@contextlib.contextmanager
def runtime_provider(provider: SecretProvider) -> Iterator[None]:
    """Put ``provider`` first in this context's chain while the block runs (a backend does this around a task)."""
    token = _runtime_providers.set((provider, *_runtime_providers.get()))
    try:
        yield
    finally:
        _runtime_providers.reset(token)


def runtime_providers() -> tuple[SecretProvider, ...]:
    """The providers pushed in this context, innermost first."""
    return _runtime_providers.get()


def providers() -> list[SecretProvider]:
    from meta.plugins.manager import secret_providers

    return [*_runtime_providers.get(), *secret_providers()]


def get_secret(name: str) -> str:
    """Resolve one secret name through the chain; the value is remembered for redaction."""
    chain = providers()
    for provider in chain:
        value = provider.get(name)
        if value is not None:
            mark_sensitive(value)
            return value
    tried = [getattr(p, "describe", lambda n, p=p: f"provider {p.name!r}")(name) for p in chain]
    raise SecretNotFound(f"secret {name!r} not found; looked in: {'; '.join(tried) or 'no providers registered'}")


def has_reference(value: Any) -> bool:
    if isinstance(value, str):
        return SECRET_REF.search(value) is not None
    if isinstance(value, dict):
        return any(has_reference(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(has_reference(v) for v in value)
    return False


def resolve(value: Any) -> Any:
    """Replace every ``${secret:NAME}`` inside a JSON-like value (strings, dicts, lists) with the secret's value."""
    if isinstance(value, str):
        if "${secret:" not in value:
            return value
        return SECRET_REF.sub(lambda m: get_secret(m.group(1)), value)
    if isinstance(value, dict):
        return {k: resolve(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(resolve(v) for v in value)
    return value


# -------------------------------------------------------------------------------------------- redaction

_sensitive: set[str] = set()
_pattern: re.Pattern[str] | None = None


def mark_sensitive(value: str | None) -> None:
    """Remember a value (a resolved secret, a webhook URL, a password from config) so it is redacted everywhere."""
    global _pattern
    if not value or len(value) < MIN_REDACT_LENGTH:
        return
    with _lock:
        if value in _sensitive:
            return
        _sensitive.add(value)
        # Longest first, so a secret that contains another is masked whole.
        _pattern = re.compile("|".join(re.escape(v) for v in sorted(_sensitive, key=len, reverse=True)))
    install_redaction()


def forget_sensitive() -> None:
    """Drop every remembered value (tests use this to start clean)."""
    global _pattern
    with _lock:
        _sensitive.clear()
        _pattern = None


def redact(text: str) -> str:
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)


def redact_value(value: Any) -> Any:
    """Redact every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Masks remembered secret values in a record's message, arguments and exception text. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the logging machinery to report
            return True
        cleaned = redact(message)
        if cleaned != message:  # leave clean records untouched (their args stay inspectable)
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            formatted = logging.Formatter().formatException(record.exc_info)
            redacted = redact(formatted)
            if redacted != formatted:
                record.exc_text = redacted
                record.exc_info = None
        return True


_installed = False


def install_redaction() -> None:
    """Wrap the log-record factory so every record, from any logger (httpx, smtplib, Airflow's, ...), is redacted
    before any handler sees it. Handler filters alone would miss handlers added later (pytest's caplog, Airflow's)."""
    global _installed
    if _installed:
        return
    _installed = True
    previous = logging.getLogRecordFactory()
    scrub = RedactingFilter()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        scrub.filter(record)
        return record

    logging.setLogRecordFactory(factory)


class RedactedError(MetaError, RuntimeError):
    """An exception whose message held a secret; ``original_type`` names the class it replaced."""

    def __init__(self, message: str, original_type: str):
        super().__init__(message)
        self.original_type = original_type


def redact_exception(exc: BaseException) -> BaseException:
    """``exc`` itself when its message (and its causes') hold no secret; otherwise a RedactedError with the masked
    message. The cause chain is not kept in that case: a cause's message or a frame's locals may carry the value."""
    texts = []
    current: BaseException | None = exc
    while current is not None:
        texts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    joined = " <- ".join(texts)
    if redact(joined) == joined:
        return exc
    first = redact(str(exc))
    causes = [redact(t) for t in texts[1:]]
    message = first + (f" (caused by {'; '.join(causes)})" if causes else "")
    if isinstance(exc, MetaError) and len(exc.args) == 1:
        # Keep meta's own error types (callers catch LoadError, AlertDeliveryError...) when they rebuild from a message.
        try:
            rebuilt = type(exc)(message)
        except TypeError:
            pass
        else:
            if str(rebuilt) == message:
                return rebuilt
    return RedactedError(message, type(exc).__name__)


@contextlib.contextmanager
def redacting() -> Iterator[None]:
    """Re-raise any exception from the block with remembered secret values masked."""
    try:
        yield
    except BaseException as exc:
        cleaned = redact_exception(exc)
        if cleaned is exc:
            raise
        raise cleaned from None
