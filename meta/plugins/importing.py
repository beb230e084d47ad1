"""What an importer gives back (``Importer.import_pipelines``, ``meta import <source>``): one result per definition.

A folder of another tool's definitions is imported definition by definition: what maps is returned with its notes
(what was left out or kept tool-specific), what does not is returned as a refusal with its reason, so one bad DAG
never hides the others. The ``import`` command in ``meta/cli/__init__.py`` writes the pipelines, prints notes and
refusals on stderr, and exits 1 when anything was refused or nothing was imported.
"""

from __future__ import annotations

from dataclasses import dataclass

from meta.spec.model import Pipeline


@dataclass(frozen=True)
class ImportedPipeline:
    """A definition that was mapped. No notes: a full import; notes: a partial one, each note saying what is lost."""

    pipeline: Pipeline
    notes: tuple[str, ...] = ()
    location: str | None = None  # where it was defined, "file:line" when known

    @property
    def partial(self) -> bool:
        return bool(self.notes)


@dataclass(frozen=True)
class ImportRefusal:
    """A definition (or a whole file that did not load) with no neutral form, and why."""

    subject: str  # what was refused, e.g. "DAG 'etl'", or "DAG file" for a file that did not load
    reason: str
    location: str | None = None  # "file:line" when known
    received: str | None = None  # what the definition has ...
    expected: str | None = None  # ... and what meta would need instead

    def __str__(self) -> str:
        head = self.subject + (f" ({self.location})" if self.location else "") + f": {self.reason}"
        lines = [head]
        if self.received:
            lines.append(f"  received: {self.received}")
        if self.expected:
            lines.append(f"  expected: {self.expected}")
        return "\n".join(lines)


@dataclass(frozen=True)
class ImportedFile:
    """A file the imported pipelines need beside their specs, e.g. a module of callables lifted out of a DAG file
    (so the pipeline no longer imports the file it replaces) or a SQL template. ``path`` is relative to the folder
    the specs are written to."""

    path: str
    text: str
    origin: str | None = None  # what it was made from, "file:line" or a file name


@dataclass(frozen=True)
class ImportOutcome:
    """Everything one import found: the imported pipelines, the refusals, in the importer's order, and the files the
    pipelines need beside their specs."""

    imported: tuple[ImportedPipeline, ...] = ()
    refused: tuple[ImportRefusal, ...] = ()
    files: tuple[ImportedFile, ...] = ()

    @property
    def pipelines(self) -> list[Pipeline]:
        return [i.pipeline for i in self.imported]

    @property
    def complete(self) -> bool:
        """Something was imported and nothing was refused (``meta import`` exits 0 only then)."""
        return bool(self.imported) and not self.refused
