"""The per-definition report of an import (``meta import --report``, ``meta migrate plan --report``): Markdown and JSON.

Built from ``meta.ImportOutcome`` alone (core meta never imports Airflow): one entry per definition, with its status
(``full``, ``partial`` or ``refused``), where it is defined, what a partial import dropped (its notes), why a refusal
was refused (reason, what the definition has, what meta expects) and the files written for it. A file the tool
could not load at all is an entry too (subject ``DAG file``, status ``refused``). ``meta migrate plan`` adds a
verdict and the target's findings to each entry (``extra``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from meta.plugins.importing import ImportOutcome

_DAG_SUBJECT = re.compile(r"^DAG '(.+)'$")


@dataclass
class ReportEntry:
    subject: str  # "DAG 'etl'", or "DAG file" for a file that did not load
    id: str | None  # the pipeline (DAG) id, when there is one
    status: str  # full | partial | refused
    location: str | None = None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None
    received: str | None = None
    expected: str | None = None
    files: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def report_paths(path: Path) -> tuple[Path, Path]:
    """(Markdown, JSON) for ``--report PATH``: the suffix ``.md`` or ``.json`` picks one, the other is written beside
    it with the other suffix; any other name gets both suffixes added."""
    if path.suffix in (".md", ".json"):
        return path.with_suffix(".md"), path.with_suffix(".json")
    return path.with_name(path.name + ".md"), path.with_name(path.name + ".json")


def _file_of(location: str | None) -> str | None:
    return re.sub(r":\d+$", "", location) if location else None


def entries(outcome: ImportOutcome, specs: dict[str, Path], extra_files: dict[str, Path]) -> list[ReportEntry]:
    """One entry per imported pipeline (``specs``: its id -> the spec written) and per refusal. A file written
    beside the specs (``extra_files``: ``ImportedFile.path`` -> where it was written) is listed with the
    pipelines defined in the file it came from (its ``origin``), or with every pipeline when that is unknown."""
    out: list[ReportEntry] = []
    by_origin: dict[str | None, list[str]] = {}
    for made in outcome.files:
        written = extra_files.get(made.path)
        if written is not None:
            by_origin.setdefault(_file_of(made.origin), []).append(str(written))
    for item in outcome.imported:
        pid = item.pipeline.id
        files = [str(specs[pid])] if pid in specs else []
        own = by_origin.get(_file_of(item.location), []) if item.location else []
        files += own or ([] if item.location else [f for fs in by_origin.values() for f in fs])
        out.append(
            ReportEntry(
                f"DAG {pid!r}", pid, "partial" if item.partial else "full", item.location, list(item.notes), files=files
            )
        )
    for refusal in outcome.refused:
        match = _DAG_SUBJECT.match(refusal.subject)
        out.append(
            ReportEntry(
                refusal.subject,
                match.group(1) if match else None,
                "refused",
                refusal.location,
                reason=refusal.reason,
                received=refusal.received,
                expected=refusal.expected,
            )
        )
    return out


def summary(items: list[ReportEntry]) -> dict[str, int]:
    counts = {"full": 0, "partial": 0, "refused": 0}
    for item in items:
        counts[item.status] = counts.get(item.status, 0) + 1
    return counts


def to_json(title: str, items: list[ReportEntry], head: dict[str, Any] | None = None) -> str:
    data = {"title": title, **(head or {}), "summary": summary(items), "entries": [asdict(i) for i in items]}
    return json.dumps(data, indent=2, default=str) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def to_markdown(title: str, items: list[ReportEntry], head_lines: list[str] | None = None) -> str:
    counts = summary(items)
    lines = [f"# {title}", "", *(head_lines or [])]
    lines += [f"Import: {counts['full']} full, {counts['partial']} partial, {counts['refused']} refused.", ""]
    for item in items:
        status = item.extra.get("verdict", item.status)
        lines += [f"## {item.subject}: {status}", ""]
        if item.location:
            lines.append(f"- defined at `{item.location}`")
        if item.extra.get("verdict"):
            lines.append(f"- import: {item.status}")
        planned = "verdict" in item.extra  # a plan lists the notes among its changes, a refusal as the reason
        for note in [] if planned else item.notes:
            lines.append(f"- dropped or kept tool-specific: {_cell(note)}")
        if item.reason:
            lines.append(f"- refused: {_cell(item.reason)}")
        if item.received:
            lines.append(f"- received: `{_cell(item.received)}`")
        if item.expected:
            lines.append(f"- expected: {_cell(item.expected)}")
        for change in item.extra.get("changes", []):
            lines.append(f"- change: {_cell(change)}")
        for blocker in item.extra.get("blockers", []) if item.status != "refused" else []:
            lines.append(f"- blocks: {_cell(blocker)}")
        for file in item.files:
            lines.append(f"- wrote `{file}`")
        lines.append("")
    return "\n".join(lines)


def write_report(
    path: Path,
    title: str,
    items: list[ReportEntry],
    head: dict[str, Any] | None = None,
    head_lines: list[str] | None = None,
) -> list[Path]:
    """Write the Markdown and JSON report for ``--report PATH``; returns both paths."""
    md, js = report_paths(path)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(to_markdown(title, items, head_lines), encoding="utf-8")
    js.write_text(to_json(title, items, head), encoding="utf-8")
    return [md, js]
