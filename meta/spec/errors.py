"""One error family for meta.

Every error a user can cause is a ``MetaError``. Subclasses also inherit the matching builtin
(ValueError, TypeError, ...) so callers that catch builtins keep working.
"""

from __future__ import annotations

from dataclasses import dataclass


class MetaError(Exception):
    """Base of every error meta raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a pipeline definition, located as precisely as we can."""

    message: str
    file: str | None = None
    line: int | None = None
    col: int | None = None
    pipeline: str | None = None
    task: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file
            if self.line is not None:
                where += f":{self.line}"
                if self.col is not None:
                    where += f":{self.col}"
            where += ": "
        scope = []
        if self.pipeline:
            scope.append(f"pipeline {self.pipeline!r}")
        if self.task:
            scope.append(f"task {self.task!r}")
        prefix = f"{', '.join(scope)}: " if scope else ""
        return f"{where}{prefix}{self.message}"


class ValidationFailed(MetaError, ValueError):
    """A definition has one or more problems; all of them are listed."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} found"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class CompileError(MetaError, ValueError):
    """A target cannot express a feature the pipeline uses."""

    def __init__(self, target: str, pipeline: str, feature: str, detail: str = "", task: str | None = None):
        self.target, self.pipeline, self.feature, self.task = target, pipeline, feature, task
        where = f"pipeline {pipeline!r}" + (f", task {task!r}" if task else "")
        msg = f"{target} cannot express {feature} ({where})"
        super().__init__(msg + (f": {detail}" if detail else ""))


class PluginError(MetaError, LookupError):
    """A backend, op type or channel was asked for but no plugin provides it."""


class TaskFailed(MetaError, RuntimeError):
    """Raised inside task execution to mark a failure with a message."""


class TaskSkipped(MetaError):
    """Raised by task code to end the task in the skipped state (like AirflowSkipException)."""
