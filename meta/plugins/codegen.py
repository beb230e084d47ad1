"""Writing generated files (Airflow DAG files, Prefect flow files): shared by every code-generating target."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from meta.spec.errors import CompileError


def write_generated(target: str, files: Sequence[tuple[str, str, str]], out_dir: Path) -> list[Path]:
    """Write ``(pipeline id, file name, text)`` entries into ``out_dir``.

    Callers render every file before calling, so a compile error leaves nothing half-written. Two pipelines whose
    ids map to the same file name are refused; a file whose text did not change is not rewritten, so re-running a
    compile leaves the folder byte- and mtime-identical.
    """
    owners: dict[str, str] = {}
    for pipeline_id, name, _ in files:
        if owners.get(name, pipeline_id) != pipeline_id:
            raise CompileError(
                target,
                pipeline_id,
                "two pipelines with the same generated file name",
                f"{owners[name]!r} and {pipeline_id!r} both become {name}; rename one",
            )
        owners[name] = pipeline_id
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for _, name, text in files:
        path = out_dir / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
