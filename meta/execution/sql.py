"""Running the statements of a ``sql`` task: split into statements, executed in one transaction."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TextIO

from meta.execution.connections import connection_url


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` outside quotes, ``--``/``/* */`` comments and ``$tag$`` bodies; drop empty statements."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in ("'", '"', "`"):
            end = i + 1
            while end < n:
                if sql[end] == ch:
                    if end + 1 < n and sql[end + 1] == ch:  # doubled quote inside a literal
                        end += 2
                        continue
                    break
                end += 1
            buf.append(sql[i : end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end == -1 else end
            buf.append(sql[i:end])
            i = end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end == -1 else end + 2
            buf.append(sql[i:end])
            i = end
        elif ch == "$":
            tag_end = sql.find("$", i + 1)
            tag = sql[i : tag_end + 1] if tag_end != -1 else ""
            if tag and (tag == "$$" or tag[1:-1].isidentifier()):
                close = sql.find(tag, tag_end + 1)
                end = n if close == -1 else close + len(tag)
                buf.append(sql[i:end])
                i = end
            else:
                buf.append(ch)
                i += 1
        elif ch == ";":
            out.append("".join(buf))
            buf = []
            i += 1
        else:
            buf.append(ch)
            i += 1
    out.append("".join(buf))
    return [s.strip() for s in out if _has_code(s)]


def _has_code(statement: str) -> bool:
    for line in _strip_comments(statement):
        if line.strip():
            return True
    return False


def _strip_comments(statement: str) -> Iterator[str]:
    text = statement
    while "/*" in text:
        start = text.index("/*")
        end = text.find("*/", start)
        text = text[:start] + (text[end + 2 :] if end != -1 else "")
    for line in text.splitlines():
        yield line.split("--", 1)[0]


def run_sql(conn_name: str, statement: str, parameters: dict[str, Any], log: TextIO | None) -> int:
    """Execute every statement in one transaction; return the number of statements run."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    statements = split_statements(statement)
    # NullPool: a DuckDB file stays unlocked between tasks, and nothing lingers after the run.
    engine = create_engine(connection_url(conn_name), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            for number, stmt in enumerate(statements, 1):
                if log is not None:
                    log.write(f"[sql {number}/{len(statements)}] {stmt}\n")
                used = {k: v for k, v in parameters.items() if f":{k}" in stmt}
                result = conn.execute(text(stmt), used) if used else conn.exec_driver_sql(stmt)
                if log is not None and result.returns_rows is False and result.rowcount is not None:
                    log.write(f"  rows affected: {result.rowcount}\n")
    finally:
        engine.dispose()
    return len(statements)
