"""Pipeline -> a plain, readable Airflow 3 DAG file (``meta compile --target airflow``).

The file is printed from the same plan the loader instantiates (plan.py), so both deployments give the same DAG.
Output is deterministic and already in ruff/black style (double quotes, 120 columns, magic trailing commas), and
every user value is printed as a Python literal by ``literal()``, never spliced into code: a task id, command or
param holding quotes, newlines or backslashes stays a string.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meta import Pipeline, write_generated
from meta_airflow.plan import Call, DagPlan, Output, Ref, TaskPlan, plan

LINE = 120
INDENT = "    "
ALWAYS_QUALIFIED = {"pendulum"}  # `pendulum.datetime(...)` reads better than a bare `datetime`


class Raw(str):
    """Source text printed as is (names and expressions the generator itself builds, never user values)."""


def string_literal(s: str) -> str:
    """A str literal in ruff's preferred quotes: double, unless the text has more double than single quotes."""
    quote = "'" if s.count('"') > s.count("'") else '"'
    out = []
    for ch in s:
        if ch == quote:
            out.append("\\" + ch)
        elif ch in "'\"":
            out.append(ch)
        else:
            out.append(repr(ch)[1:-1])
    return quote + "".join(out) + quote


class Link:
    """One call of a method chain, ``.name(k=v, ...)`` (a mapped task's ``.partial()`` and ``.expand()``)."""

    def __init__(self, name: str, kwargs: tuple[tuple[str, Any], ...]):
        self.name, self.kwargs = name, kwargs


class Renderer:
    def __init__(self) -> None:
        self.imports: dict[str, str] = {}  # 'module:Name' -> name used in code
        self.taken: set[str] = set()
        self.outputs: dict[str, str] = {}  # task id -> the expression of its result (``extract.output``)

    # -- names ------------------------------------------------------------------------------------

    def name_for(self, path: str) -> str:
        """The expression naming ``module:attr.attr``, registering the import it needs."""
        module, _, attrs = path.partition(":")
        head, _, rest = attrs.partition(".")
        if module in ALWAYS_QUALIFIED:
            self.imports.setdefault(f"{module}:", module)
            self.taken.add(module)
            return f"{module}.{attrs}"
        key = f"{module}:{head}"
        if key not in self.imports:
            alias = head
            if alias in self.taken:
                alias = f"{module.rpartition('.')[2]}_{head}"
                n = 2
                while alias in self.taken:
                    alias, n = f"{module.rpartition('.')[2]}_{head}_{n}", n + 1
            self.imports[key] = alias
            self.taken.add(alias)
        return self.imports[key] + (f".{rest}" if rest else "")

    def import_lines(self) -> list[str]:
        """isort/ruff style: standard library, third party, then meta_airflow; `import x` before `from x`."""
        plain: set[str] = set()
        names: dict[str, set[str]] = {}
        for key, alias in self.imports.items():
            module, _, name = key.partition(":")
            if not name:
                plain.add(module)
            else:
                names.setdefault(module, set()).add(name if alias == name else f"{name} as {alias}")

        def section(module: str) -> int:
            top = module.split(".")[0]
            return 0 if top in sys.stdlib_module_names else 2 if top == "meta_airflow" else 1

        def by_type(name: str) -> tuple[int, str]:  # isort's order-by-type: CONSTANTS, Classes, functions
            n = name.split(" as ")[0]
            return (0 if n.isupper() and len(n) > 1 else 1 if n[:1].isupper() else 2, n)

        blocks: list[list[str]] = [[], [], []]
        for module in sorted(plain):
            blocks[section(module)].append(f"import {module}")
        for module in sorted(names):
            blocks[section(module)].append(f"from {module} import {', '.join(sorted(names[module], key=by_type))}")
        out: list[str] = []
        for block in blocks:
            if block:
                out += [*block, ""]
        return out[:-1]

    # -- values -----------------------------------------------------------------------------------

    def flat(self, value: Any) -> str:
        if isinstance(value, Raw):
            return str(value)
        if isinstance(value, Call):
            parts = [self.flat(a) for a in value.args] + [f"{k}={self.flat(v)}" for k, v in value.kwargs]
            return f"{self.name_for(value.path)}({', '.join(parts)})"
        if isinstance(value, Ref):
            return self.name_for(value.path)
        if isinstance(value, Output):
            return self.outputs[value.task_id]
        if isinstance(value, Link):
            return f".{value.name}({', '.join(f'{k}={self.flat(v)}' for k, v in value.kwargs)})"
        if isinstance(value, str):
            return string_literal(value)
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.flat(k)}: {self.flat(v)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(self.flat(v) for v in value) + "]"
        if isinstance(value, tuple):
            if len(value) == 1:
                return f"({self.flat(value[0])},)"
            return "(" + ", ".join(self.flat(v) for v in value) + ")"
        if value is None or isinstance(value, bool | int | float):
            return repr(value)
        raise TypeError(f"cannot print {type(value).__name__} {value!r} as a Python literal")

    def _items(self, value: Any) -> tuple[str, str, list[tuple[str, Any]]] | None:
        """(opener, closer, [(prefix, item)]) for values that can be split over lines."""
        if isinstance(value, Call):
            items = [("", a) for a in value.args] + [(f"{k}=", v) for k, v in value.kwargs]
            return f"{self.name_for(value.path)}(", ")", items
        if isinstance(value, Link) and value.kwargs:
            return f".{value.name}(", ")", [(f"{k}=", v) for k, v in value.kwargs]
        if isinstance(value, dict) and value:
            return "{", "}", [(f"{self.flat(k)}: ", v) for k, v in value.items()]
        if isinstance(value, list) and value:
            return "[", "]", [("", v) for v in value]
        if isinstance(value, tuple) and value:
            return "(", ")", [("", v) for v in value]
        return None

    def render(self, value: Any, indent: int, used: int, tail: int, force: bool = False) -> str:
        """``value`` placed after ``used`` columns on a line, followed by ``tail`` more characters."""
        flat = self.flat(value)
        split = self._items(value)
        if split is None or (not force and used + len(flat) + tail <= LINE):
            return flat
        opener, closer, items = split
        inner = INDENT * (indent + 1)
        lines = [opener]
        for prefix, item in items:
            text = self.render(item, indent + 1, len(inner) + len(prefix), 1)
            lines.append(f"{inner}{prefix}{text},")
        lines.append(INDENT * indent + closer)
        return "\n".join(lines)

    def task(self, t: TaskPlan, lead: str) -> str:
        """The statement ``<lead><operator>(...)``; a mapped task's TaskFlow chain ends in ``.expand(...)``, laid out
        as ruff does: on one line when it fits, else a split first call followed by ``.expand(...)`` or, with
        ``.partial(...)`` too, one call per line inside parentheses."""
        call = Call(t.operator, args=t.args, kwargs=(("task_id", t.task_id), *t.kwargs))
        if not t.mapped:
            return lead + self.render(call, 1, len(lead), 0)
        links = ([Link("partial", t.partial)] if t.partial else []) + [Link("expand", t.expand)]
        flat = lead + self.flat(call) + "".join(self.flat(link) for link in links)
        if len(flat) <= LINE:
            return flat
        if len(links) == 1:
            head = self.render(call, 1, len(lead), 0, force=True)
            return lead + head + self.render(links[0], 1, len(INDENT) + 1, 0)
        inner = INDENT * 2
        lines = [lead + "(", inner + self.render(call, 2, len(inner), 0)]
        lines += [inner + self.render(link, 2, len(inner), 0) for link in links]
        return "\n".join([*lines, INDENT + ")"])


def variable_names(task_ids: Sequence[str], reserved: set[str]) -> dict[str, str]:
    """A readable, unique Python name per task id (ids may hold '.' and '-')."""
    out: dict[str, str] = {}
    used = set(reserved)
    for tid in task_ids:
        base = re.sub(r"\W", "_", tid)
        if not base or base[0].isdigit() or keyword.iskeyword(base) or base in used:
            base = f"task_{base}"
        name, n = base, 2
        while name in used or keyword.iskeyword(name):
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        out[tid] = name
    return out


def render_plan(dag_plan: DagPlan, sources: Sequence[str] = ()) -> str:
    r = Renderer()
    r.taken.update({"dag", "annotations"})
    dag_call = Call("airflow.sdk:DAG", kwargs=dag_plan.kwargs)
    # Names are registered while printing; print the body first, the imports last.
    body = [f"with {r.render(dag_call, 0, len('with '), len(' as dag:'), force=True)} as dag:"]
    for t in dag_plan.tasks:  # register operator imports before naming variables, so names never clash
        r.name_for(t.operator)
    names = variable_names([t.task_id for t in dag_plan.tasks], r.taken)
    r.taken.update(names.values())  # names imported while printing the tasks (call_python...) are aliased instead
    # A mapped task's variable is the XComArg its .expand() returns; any other task's result is its .output.
    r.outputs = {t.task_id: names[t.task_id] + ("" if t.mapped else ".output") for t in dag_plan.tasks}
    for t in dag_plan.tasks:
        body.append(r.task(t, f"{INDENT}{names[t.task_id]} = "))
    upstream: dict[str, list[str]] = {}
    for up, down in dag_plan.edges:
        upstream.setdefault(down, []).append(up)
    if upstream:
        body.append("")
    for down, ups in upstream.items():
        left: Any = Raw(names[ups[0]]) if len(ups) == 1 else [Raw(names[u]) for u in ups]
        tail = f" >> {names[down]}"
        body.append(INDENT + r.render(left, 1, len(INDENT), len(tail)) + tail)
    header = [
        f'"""Airflow DAG for the meta pipeline {dag_plan.dag_id}.',
        "",
        "Generated by `meta compile --target airflow`; edit the pipeline spec and regenerate rather than this file.",
        '"""',
    ]
    source_lines = [f"# Source: {string_literal(s)}" for s in sources]
    imports = ["from __future__ import annotations", "", *r.import_lines()]
    return "\n".join([*header, *source_lines, "", *imports, "", *body]) + "\n"


def render_pipeline(pipeline: Pipeline, sources: Sequence[str] = ()) -> str:
    """The DAG file text for ``pipeline``; raises CompileError for features Airflow cannot express."""
    return render_plan(plan(pipeline), sources)


def write_dag_files(pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
    """One ``<pipeline id>.py`` per pipeline (all rendered before any is written)."""
    names = [Path(s).name for s in sources]
    files = [(p.id, f"{re.sub(r'[.-]', '_', p.id)}.py", render_pipeline(p, names)) for p in pipelines]
    return write_generated("airflow", files, out_dir)
