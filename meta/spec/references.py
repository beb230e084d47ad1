"""References between tasks: ``{{ tasks.extract.result }}`` names another task's result, ``{{ params.items }}`` a
run parameter. Pure text functions, shared by the model (a reference implies the dependency), the runners (which
resolve them) and the Airflow adapter (which turns them into XCom references).

A task id that is not a Python identifier (``load-eu``, ``a.b``) is written ``{{ tasks['load-eu'].result }}``.
A string that is exactly one reference (``"{{ tasks.extract.result }}"``) stands for the value itself, whatever its
JSON type (Airflow's XComArg); a reference inside longer text renders as text, like any template.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_TASK_ID = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
# tasks.extract.result  |  tasks['load-eu'].result  |  tasks["a.b"].result
RESULT_EXPRESSION = re.compile(
    rf"""\btasks\s*(?:\.\s*(?P<dotted>[A-Za-z_][A-Za-z0-9_]*)|\[\s*(?P<q>['"])(?P<quoted>{_TASK_ID})(?P=q)\s*\])"""
    r"""\s*\.\s*result\b"""
)
_PARAM_EXPRESSION = re.compile(
    r"""^params\s*(?:\.\s*(?P<dotted>[A-Za-z_][A-Za-z0-9_]*)|\[\s*(?P<q>['"])(?P<quoted>[^'"]+)(?P=q)\s*\])$"""
)
_WHOLE = re.compile(r"^\s*\{\{\s*(?P<expr>.*?)\s*\}\}\s*$", re.DOTALL)


@dataclass(frozen=True)
class Reference:
    """A whole-value reference: ``kind`` is ``result`` (``name`` a task id) or ``param`` (``name`` a param)."""

    kind: str
    name: str

    def __str__(self) -> str:
        if self.kind == "param":
            return "{{ params." + self.name + " }}"
        return "{{ " + result_expression(self.name) + " }}"


def result_expression(task_id: str) -> str:
    """The Jinja expression naming ``task_id``'s result (bracketed when the id is not an identifier)."""
    return f"tasks.{task_id}.result" if task_id.isidentifier() else f"tasks[{task_id!r}].result"


def whole_reference(value: Any) -> Reference | None:
    """The reference ``value`` is, when it is a string holding exactly one ``{{ tasks.X.result }}`` or
    ``{{ params.X }}`` and nothing else; None otherwise."""
    if not isinstance(value, str) or "{{" not in value:
        return None
    whole = _WHOLE.match(value)
    if whole is None or "{{" in whole.group("expr") or "}}" in whole.group("expr"):
        return None
    expr = whole.group("expr")
    match = RESULT_EXPRESSION.fullmatch(expr)
    if match:
        return Reference("result", match.group("dotted") or match.group("quoted"))
    match = _PARAM_EXPRESSION.match(expr)
    if match:
        return Reference("param", match.group("dotted") or match.group("quoted"))
    return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def referenced_results(value: Any) -> list[str]:
    """Task ids whose result ``value`` (any JSON-like value) refers to, each once, in order of appearance."""
    out: dict[str, None] = {}
    for text in _strings(value):
        if "tasks" not in text or "{" not in text:
            continue
        for match in RESULT_EXPRESSION.finditer(text):
            out[match.group("dotted") or match.group("quoted")] = None
    return list(out)


def replace_results(text: str, replacement: Any) -> str:
    """``text`` with every result expression replaced by ``replacement(task_id)`` (the Airflow adapter's
    ``ti.xcom_pull(task_ids=...)``)."""
    return RESULT_EXPRESSION.sub(lambda m: replacement(m.group("dotted") or m.group("quoted")), text)
