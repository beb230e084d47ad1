"""Lifting a DAG file's callables into a module beside the specs, so an imported pipeline no longer imports the DAG
file it replaces (``meta import airflow``).

A python/branch task whose callable is defined in its DAG file (at module level, in a ``with DAG`` block, or nested in
the ``@dag`` function or any other function of the file) is referenced as ``<module>:<function>``, ``<module>`` being
a module written beside the specs: ``<dag-file-stem>_tasks.py`` (see ``lifted_module_names``). That module gets the
function's source (its TaskFlow decorators stripped, a nested one dedented) and, found by name analysis (``symtable``),
what it needs of the DAG file: the imports it uses (module level, and those of the enclosing function before it), the
module-level constants, helper functions and classes it uses (transitively), and the constants of the enclosing
function it closes over (names bound to literals), written as module-level assignments. Nothing else of the file is
carried: no DAG object, operator, ``with DAG`` block or call that builds DAGs.

Refused, naming the construct, its file:line and what to do: lambdas; closures over values of the enclosing function
that are not constants (its parameters, computed values); functions that use the DAG objects the file builds (a
``DAG``, an operator, an ``XComArg``, the ``@dag`` function). Callables from installed packages stay referenced by
their import name; those from other modules of the dags folder too, with a note (deploy that module beside the specs).

Names in the lifted module are the original ones; a nested function (or a constant of its enclosing function) whose
name is taken in the DAG file's module scope or by a builtin becomes ``<enclosing>__<name>``, and two module-level
functions of one name (``@task def extract()`` in two ``with DAG`` blocks) become ``<dag_id>__<name>``; references
to them in the lifted code are renamed too. Names are given in import order (DAG ids sorted, tasks in DAG order), so
the same folder always gives the same module.
"""

from __future__ import annotations

import ast
import builtins
import copy
import functools
import inspect
import io
import itertools
import os
import re
import symtable
import sys
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from meta import ImportedFile
from meta_airflow.import_values import ImportRefused, callable_ref

__all__ = ["CallableLifter", "DagCallables", "lifted_module_names"]

LIFTED_SUFFIX = "_tasks"
# Objects a DAG file builds to define DAGs: a lifted function that uses one cannot be carried without the file.
AIRFLOW_MACHINERY = frozenset(
    {"DAG", "BaseOperator", "MappedOperator", "XComArg", "TaskGroup", "_TaskDecorator", "DagParam", "EdgeModifier"}
)
FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
BUILTIN_NAMES = frozenset(dir(builtins))


def lifted_module_names(root: Path, dag_files: Iterable[str]) -> dict[str, str]:
    """DAG file (resolved path) -> the name of the module its callables are lifted into: the file's path relative to
    the dags folder, ``/`` and characters a module name cannot have replaced by ``_``, plus ``_tasks``; when that is
    the name of a top-level module of the dags folder (``etl_tasks.py`` beside ``etl.py``) or of another DAG file's
    lifted module, or an installed one, ``_lifted_tasks``, then a number. Given in the files' sorted order."""
    taken = {p.stem if p.suffix == ".py" else p.name for p in root.iterdir()} if root.is_dir() else set()
    taken |= installed_modules()
    names: dict[str, str] = {}
    for file in sorted({os.path.realpath(f) for f in dag_files}):
        try:
            rel = Path(file).relative_to(os.path.realpath(root)).with_suffix("")
        except ValueError:
            rel = Path(Path(file).stem)
        base = re.sub(r"[^A-Za-z0-9_]", "_", "_".join(rel.parts))  # (CALLABLE_PATTERN's alphabet)
        base = f"_{base}" if base[:1].isdigit() else base
        candidates = itertools.chain(
            [f"{base}{LIFTED_SUFFIX}", f"{base}_lifted{LIFTED_SUFFIX}"],
            (f"{base}_lifted{LIFTED_SUFFIX}_{n}" for n in itertools.count(2)),
        )
        name = next(c for c in candidates if c not in taken)
        taken.add(name)
        names[file] = name
    return names


# -------------------------------------------------------------------------------------------- bindings


@dataclass
class Binding:
    """Where a scope binds a name: ``import`` (``alias`` given), ``def``, ``class``, ``assign`` (a plain ``name =``),
    ``param`` or ``other`` (loop targets, ``with ... as``, augmented assignments, ...)."""

    kind: str
    node: ast.AST
    alias: ast.alias | None = None
    top: ast.stmt | None = None  # the module-level statement it is in (module scope only)


class _Bindings(ast.NodeVisitor):
    """The names one scope binds, without entering the scopes nested in it."""

    def __init__(self) -> None:
        self.found: dict[str, list[Binding]] = {}
        self.stars: list[ast.ImportFrom] = []
        self.top: ast.stmt | None = None

    def add(self, name: str, kind: str, node: ast.AST, alias: ast.alias | None = None) -> None:
        self.found.setdefault(name, []).append(Binding(kind, node, alias, self.top))

    def stores(self, target: ast.AST, node: ast.AST) -> None:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                self.add(sub.id, "other", node)

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.add(node.name, "def", node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.add(node.name, "class", node)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return None

    def visit_ListComp(self, node: ast.AST) -> None:
        return None

    visit_SetComp = visit_DictComp = visit_GeneratorExp = visit_ListComp

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.add(alias.asname or alias.name.split(".")[0], "import", node, alias)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(node)
            else:
                self.add(alias.asname or alias.name, "import", node, alias)

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            self.add(node.targets[0].id, "assign", node)
        else:
            for target in node.targets:
                self.stores(target, node)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is None:
            return
        if isinstance(node.target, ast.Name):
            self.add(node.target.id, "assign", node)
        else:
            self.stores(node.target, node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.stores(node.target, node)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.stores(node.target, node)
        for stmt in [*node.body, *node.orelse]:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_withitem(self, node: ast.withitem) -> None:
        if node.optional_vars is not None:
            self.stores(node.optional_vars, node.optional_vars)  # (a withitem has no line of its own)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.add(node.name, "other", node)
        for stmt in node.body:
            self.visit(stmt)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.stores(node.target, node)

    def visit_Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            self.stores(target, node)

    def visit_MatchAs(self, node: ast.MatchAs) -> None:
        if node.name:
            self.add(node.name, "other", node)
        self.generic_visit(node)

    def visit_MatchStar(self, node: ast.MatchStar) -> None:
        if node.name:
            self.add(node.name, "other", node)


def scope_bindings(scope: ast.Module | ast.FunctionDef | ast.AsyncFunctionDef) -> _Bindings:
    visitor = _Bindings()
    if isinstance(scope, FUNCTION_NODES):
        args = scope.args
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                visitor.add(arg.arg, "param", arg)
    for stmt in scope.body:
        visitor.top = stmt if isinstance(scope, ast.Module) else None
        visitor.visit(stmt)
    return visitor


def loaded_names(expressions: Iterable[ast.AST | None]) -> set[str]:
    """Names an expression reads from its scope (not those its own comprehensions and lambdas bind)."""
    out: set[str] = set()
    for expr in expressions:
        if expr is None:
            continue
        local: set[str] = set()
        for sub in ast.walk(expr):
            if isinstance(sub, ast.comprehension):
                local |= {n.id for n in ast.walk(sub.target) if isinstance(n, ast.Name)}
            elif isinstance(sub, ast.Lambda):
                local |= {a.arg for a in ast.walk(sub.args) if isinstance(a, ast.arg)}
        out |= {n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - local
    return out


@functools.cache
def installed_modules() -> frozenset[str]:
    """The top-level modules of the standard library and of the installed distributions: one of them would shadow a
    lifted module of that name (meta finds modules beside the specs after those). Not ``sys.modules`` or
    ``sys.path``: what this process imported or added must not change the names. Read once per process: scanning
    every distribution's metadata takes 0.1-1 s, which once per DAG folder made importing 25x slower."""
    import importlib.metadata

    return frozenset(sys.stdlib_module_names) | frozenset(importlib.metadata.packages_distributions())


def is_machinery(value: Any) -> str | None:
    """The Airflow class that makes ``value`` part of a DAG definition (a DAG, an operator, an XComArg, the
    ``@dag``/``@task`` decorators), or None."""
    for cls in type(value).__mro__:
        if cls.__name__ in AIRFLOW_MACHINERY and cls.__module__.startswith("airflow"):
            return cls.__name__
    code = getattr(value, "__code__", None)  # a @dag function: airflow's wrapper (functools.wraps keeps the name)
    if hasattr(value, "__wrapped__") and f"{os.sep}airflow{os.sep}" in str(getattr(code, "co_filename", "")):
        return "@dag function"
    return None


def literal(value: ast.AST) -> bool:
    try:
        ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True


def literal_repr(value: Any) -> str | None:
    """``repr(value)`` when it reads back as the same value (plain data), else None."""
    try:
        text = repr(value)
        return text if ast.literal_eval(text) == value else None
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


# -------------------------------------------------------------------------------------------- one DAG file


@dataclass
class Item:
    """One statement of the lifted module: an import, or a definition/assignment."""

    text: str
    is_import: bool
    line: int = 0  # where the DAG file has it: imports are written in the file's order
    folder_module: str | None = None  # the module of the dags folder this import needs beside the specs


class DagFile:
    """One DAG file's AST, scopes and the module of callables lifted out of it so far."""

    def __init__(self, path: str, module_name: str, runtime: ModuleType | None, folder_modules: set[str]) -> None:
        self.path, self.module_name, self.runtime = path, module_name, runtime
        self.folder_modules = folder_modules  # top-level module names of the dags folder
        self.text = Path(path).read_text(encoding="utf-8")
        self.lines = self.text.splitlines(keepends=True)
        self.tree = ast.parse(self.text, filename=path)
        self.tables: dict[tuple[str, int], symtable.SymbolTable] = {}
        stack = [symtable.symtable(self.text, path, "exec")]
        while stack:
            table = stack.pop()
            self.tables[(table.get_name(), table.get_lineno())] = table
            stack += table.get_children()
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(self.tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        module = scope_bindings(self.tree)
        self.module_scope, self.stars = module.found, module.stars
        self.string_lines = continuation_lines(self.text)
        self.future_annotations = any(
            isinstance(s, ast.ImportFrom) and s.module == "__future__" and any(a.name == "annotations" for a in s.names)
            for s in self.tree.body
        )
        self._scopes: dict[ast.AST, dict[str, list[Binding]]] = {}
        # State of the module being built (copied by ``snapshot`` so a refused DAG leaves nothing behind).
        self.items: dict[Any, Item] = {}
        self.order: list[Any] = []
        self.names: dict[Any, str] = {}
        self.taken: dict[str, Any] = {}

    def where(self, node: ast.AST) -> str:
        return f"{self.path}:{getattr(node, 'lineno', '?')}"

    def snapshot(self) -> tuple[Any, ...]:
        return dict(self.items), list(self.order), dict(self.names), dict(self.taken)

    def restore(self, state: tuple[Any, ...]) -> None:
        self.items, self.order, self.names, self.taken = (copy.copy(part) for part in state)

    def find_def(self, code: Any) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
        for node in ast.walk(self.tree):
            if (
                isinstance(node, FUNCTION_NODES)
                and node.name == code.co_name
                and first_line(node) == code.co_firstlineno
            ):
                return node
        return None

    def chain(self, node: ast.AST) -> list[ast.AST]:
        """The scopes (functions, classes, lambdas) ``node`` is nested in, innermost first."""
        out: list[ast.AST] = []
        parent = self.parents.get(node)
        while parent is not None:
            if isinstance(parent, SCOPE_NODES):
                out.append(parent)
            parent = self.parents.get(parent)
        return out

    def scope(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, list[Binding]]:
        if fn not in self._scopes:
            self._scopes[fn] = scope_bindings(fn).found
        return self._scopes[fn]

    def unique(self, name: str, scope: ast.AST) -> bool:
        """Whether a name of function ``scope`` keeps its name at module level in the lifted module: no other scope
        of the file binds it (then nothing else can claim it, whichever DAGs are imported) and it is no builtin."""
        if name in self.module_scope or name in BUILTIN_NAMES:
            return False
        functions = (n for n in ast.walk(self.tree) if isinstance(n, FUNCTION_NODES) and n is not scope)
        return not any(name in self.scope(fn) for fn in functions)

    def table(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> symtable.SymbolTable:
        return self.tables[(node.name, node.lineno)]

    def label(self, chain: list[ast.AST]) -> str:
        return "__".join(getattr(s, "name", "lambda") for s in reversed(chain))

    def allocate(self, key: Any, preferred: list[str]) -> str:
        """The name ``key`` has in the lifted module: the first free of ``preferred``, else the last numbered."""
        if key in self.names:
            return self.names[key]
        name = next((p for p in preferred if self.taken.get(p, key) == key), None)
        number = 2
        while name is None:
            candidate = f"{preferred[-1]}_{number}"
            name = candidate if candidate not in self.taken else None
            number += 1
        self.names[key], self.taken[name] = name, key
        return name

    def add(self, key: Any, text: str, is_import: bool = False, line: int = 0, module: str | None = None) -> None:
        if key not in self.items:
            top = (module or "").split(".")[0]
            self.items[key] = Item(text, is_import, line, top if top in self.folder_modules else None)
            self.order.append(key)

    def needed_folder_modules(self) -> list[str]:
        return sorted({i.folder_module for i in self.items.values() if i.folder_module})

    def render(self, origin: str) -> str:
        imports = [i.text for i in sorted((self.items[k] for k in self.order if self.items[k].is_import), key=line_of)]
        code = [self.items[k].text for k in self.order if not self.items[k].is_import]
        head = (
            f'"""Callables lifted out of the DAG file {origin} by `meta import airflow`: the imported\n'
            f"pipelines reference them as {self.module_name}:<function>, so they run without the DAG file.\n"
            '"""\n'
        )
        if self.future_annotations:
            head += "\nfrom __future__ import annotations\n"
        body = ("\n" + "\n".join(imports) + "\n") if imports else ""
        return head + body + "".join("\n\n" + c.rstrip("\n") + "\n" for c in code)


def continuation_lines(text: str) -> set[int]:
    """The lines (1-based) that continue a multi-line string: dedenting a nested function must leave them as
    they are, or the strings' text would change."""
    out: set[int] = set()
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.STRING and token.end[0] > token.start[0]:
                out |= set(range(token.start[0] + 1, token.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def line_of(item: Item) -> int:
    return item.line


def first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", None) or []
    return min([d.lineno for d in decorators] + [node.lineno])  # type: ignore[attr-defined]


# -------------------------------------------------------------------------------------------- lifting


class Lift:
    """Lifting one task's callable (and what it needs) into its DAG file's module; raises ImportRefused."""

    def __init__(self, file: DagFile, dag_id: str, tid: str, notes: list[str]) -> None:
        self.file, self.dag_id, self.tid, self.notes = file, dag_id, tid, notes
        self.root: ast.AST | None = None  # the task's own callable (refusals name it first)

    def refuse(self, reason: str, received: str, expected: str) -> ImportRefused:
        return ImportRefused(f"task {self.tid}: {reason}", task=self.tid, received=received, expected=expected)

    # ---- definitions

    def function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, name: str | None = None) -> str:
        """Lift a ``def`` (module level or nested); its name in the lifted module."""
        f = self.file
        self.root = self.root or node
        key = ("def", node.lineno, node.col_offset)
        if key in f.names:
            return f.names[key]
        chain = f.chain(node)
        if any(not isinstance(s, FUNCTION_NODES) for s in chain):
            kind = "a class" if any(isinstance(s, ast.ClassDef) for s in chain) else "a lambda"
            raise self.refuse(
                f"its callable {node.name} ({f.where(node)}) is defined in {kind}; meta lifts functions (module level "
                "or nested in functions) into a module beside the specs",
                f"def {node.name} in {kind}",
                "a function at module level or in the @dag function",
            )
        for sub in ast.walk(node):
            if isinstance(sub, ast.Nonlocal):
                raise self.refuse(
                    f"its callable {node.name} ({f.where(node)}) assigns variables of the enclosing function "
                    f"(nonlocal {', '.join(sub.names)}); a lifted function has no enclosing function",
                    f"nonlocal {', '.join(sub.names)} at {f.where(sub)}",
                    "return the value instead, or keep the state at module level",
                )
        stripped, kept = self.decorators(node)
        if chain:
            preferred = [node.name] if f.unique(node.name, chain[0]) else []
            preferred.append(f"{f.label(chain)}__{node.name}")
        elif len(f.module_scope.get(node.name, [])) > 1 and name is None:  # one name in several with DAG blocks
            preferred = [f"{re.sub(r'[^A-Za-z0-9_]', '_', self.dag_id)}__{node.name}"]
        else:
            preferred = [name or node.name]
        new_name = f.allocate(key, preferred)
        table = f.table(node)
        frees = set(table.get_frees()) if isinstance(table, symtable.Function) else set()
        deftime = loaded_names([*kept, *defaults_and_annotations(node, f.future_annotations)])
        renames = self.needs(node, chain, subtree_globals(table), frees, deftime)
        f.add(key, self.source(node, stripped, renames, new_name))
        return new_name

    def decorators(
        self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
    ) -> tuple[list[ast.expr], list[ast.expr]]:
        """(TaskFlow decorators to strip, other decorators to keep); a ``@dag`` function is refused."""
        stripped, kept = [], []
        for dec in node.decorator_list:
            expr = dec.func if isinstance(dec, ast.Call) else dec
            value = self.runtime_of(expr)
            name = getattr(value, "__name__", "") if value is not None else self.airflow_import(expr)
            if value is not None and not str(getattr(value, "__module__", "") or "").startswith("airflow"):
                kept.append(dec)
            elif value is None and name is None:
                kept.append(dec)
            elif name == "dag":
                raise self.refuse(
                    f"its callable uses {node.name} ({self.file.where(node)}), the @dag function that builds the DAG; "
                    "a lifted module cannot carry DAG definitions",
                    f"a reference to the @dag function {node.name}",
                    "a function that does not use the DAG definition",
                )
            else:
                stripped.append(dec)
        if stripped:  # decorators above a TaskFlow one decorate the TaskFlow object, not the code the task runs
            lowest = max(node.decorator_list.index(d) for d in stripped)
            stripped += [d for d in kept if node.decorator_list.index(d) < lowest]
            kept = [d for d in kept if node.decorator_list.index(d) > lowest]
        return stripped, kept

    def airflow_import(self, expr: ast.expr) -> str | None:
        """Without the DAG module's values: the name a decorator imported from Airflow has (``task``, ``dag``; the
        attribute's for ``task.branch``), None when it is not imported from Airflow."""
        attrs: list[str] = []
        while isinstance(expr, ast.Attribute):
            attrs.append(expr.attr)
            expr = expr.value
        found = self.file.module_scope.get(expr.id, []) if isinstance(expr, ast.Name) else []
        for b in found:
            node, alias = b.node, b.alias
            source = node.module if isinstance(node, ast.ImportFrom) else (alias.name if alias else None)
            if b.kind == "import" and alias is not None and str(source or "").split(".")[0] == "airflow":
                return attrs[0] if attrs else alias.name.split(".")[-1]
        return None

    def runtime_of(self, expr: ast.expr) -> Any:
        """The DAG module's value of ``name`` or ``name.attr...`` (None when unknown)."""
        parts: list[str] = []
        while isinstance(expr, ast.Attribute):
            parts.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name) or self.file.runtime is None:
            return None
        value: Any = vars(self.file.runtime).get(expr.id, getattr(builtins, expr.id, None))
        for part in reversed(parts):
            value = getattr(value, part, None)
        return value

    def needs(
        self, node: ast.AST, chain: list[ast.AST], globals_: set[str], frees: set[str], deftime: set[str]
    ) -> dict[str, str]:
        """Carry what ``node`` uses (its globals, the names it closes over, those its decorators/defaults read in the
        enclosing scope) into the lifted module; the renames its source needs."""
        renames: dict[str, str] = {}
        problems: list[str] = []
        wanted = [(n, "free") for n in sorted(frees)] + [(n, "global") for n in sorted(globals_)]
        wanted += [(n, "deftime") for n in sorted(deftime - frees - globals_)]
        for name, how in wanted:
            scope = self.enclosing_scope(name, chain, how)
            if scope is not None:
                new = self.in_scope(name, scope, chain, problems)
            else:
                new = self.global_name(name, problems, deftime=how == "deftime")
            if new is not None and new != name:
                renames[name] = new
        if problems:
            raise self.refusal(node, chain, problems)
        return renames

    def refusal(self, node: ast.AST, chain: list[ast.AST], problems: list[str]) -> ImportRefused:
        """Why ``node`` (the callable, or what it uses) cannot be lifted. Problems are ``name (why)``: closures over
        non-constants as they are, DAG objects with ``!``, defaults/decorators reading a rebound name with ``~``."""
        what = getattr(node, "name", None) or type(node).__name__.lower()
        where = self.file.where(node)
        if self.root is not None and node is not self.root:
            what = f"{self.root.name} ({self.file.where(self.root)}) uses {what}, which"  # type: ignore[attr-defined]
        else:
            what = f"{what} ({where})"
        closure = [p for p in problems if p[0] not in "!~"]
        rebound = [p[1:] for p in problems if p[0] == "~"]
        machinery = [p[1:] for p in problems if p[0] == "!"]
        if closure:
            outer = getattr(chain[0], "name", "?") if chain else "?"
            return self.refuse(
                f"its callable {what} is a closure over values of the enclosing function {outer}() that are not "
                f"constants: {'; '.join(closure)}. meta lifts the function into a module beside the specs, where those "
                "values do not exist",
                f"a closure over {', '.join(p.split(' ', 1)[0] for p in closure)}",
                "pass them to the task as arguments (they become its kwargs), or move the function and the values to "
                "module level",
            )
        if rebound:
            return self.refuse(
                f"its callable {what} has defaults or decorators that read {'; '.join(rebound)}. The lifted function "
                "is defined once and would get the last value only",
                f"defaults or decorators reading {', '.join(p.split(' ', 1)[0] for p in rebound)}",
                "pass the value to the task as an argument (op_kwargs, or an argument of the @task call) instead",
            )
        return self.refuse(
            f"its callable {what} uses what the DAG file builds: {'; '.join(machinery)}. meta lifts the function "
            "into a module beside the specs and does not carry DAG definitions",
            ", ".join(p.split(" ", 1)[0] for p in machinery),
            "a function that uses its arguments and the task context (e.g. dag_run, ti) instead",
        )

    def enclosing_scope(self, name: str, chain: list[ast.AST], how: str) -> ast.AST | None:
        """The enclosing function that binds ``name`` for ``node`` (None: module level). Decorators and defaults are
        read in the scope the ``def`` is in, the body's free names in the nearest enclosing function binding them."""
        if how == "global":
            return None
        for scope in chain:
            if isinstance(scope, FUNCTION_NODES) and name in self.file.scope(scope):
                return scope
        return None

    def in_scope(self, name: str, scope: ast.AST, chain: list[ast.AST], problems: list[str]) -> str | None:
        """A name of an enclosing function: its literal constant (inlined), nested def (lifted) or import."""
        f = self.file
        assert isinstance(scope, FUNCTION_NODES)
        found = f.scope(scope)[name]
        inner = f.chain(scope)
        preferred = [name] if f.unique(name, scope) else []
        preferred.append(f"{f.label([scope, *inner])}__{name}")
        if len(found) == 1:
            b = found[0]
            if b.kind == "def" and isinstance(b.node, FUNCTION_NODES):
                return self.function(b.node)
            value = getattr(b.node, "value", None)
            if b.kind == "assign" and isinstance(value, ast.expr) and literal(value):
                key = ("const", b.node.lineno, b.node.col_offset)  # type: ignore[attr-defined]
                new = f.allocate(key, preferred)
                f.add(key, f"{new} = {ast.get_source_segment(f.text, value) or ast.unparse(value)}")
                return new
            if b.kind == "import" and b.alias is not None:
                return self.import_alias(b, preferred)
        kinds = {b.kind for b in found}
        line = getattr(found[0].node, "lineno", "?")
        if kinds == {"param"}:
            problems.append(f"{name} (a parameter of {scope.name}())")
        elif len(found) > 1:
            problems.append(f"{name} (bound {len(found)} times in {scope.name}())")
        elif kinds == {"assign"}:
            problems.append(f"{name} (computed at line {line})")
        else:
            problems.append(f"{name} (bound at line {line})")
        return None

    def import_alias(self, b: Binding, preferred: list[str]) -> str:
        f = self.file
        assert b.alias is not None and isinstance(b.node, ast.Import | ast.ImportFrom)
        key = ("import", b.node.lineno, b.node.col_offset, b.alias.name, b.alias.asname)
        bound = b.alias.asname or b.alias.name.split(".")[0]
        new = f.allocate(key, preferred)
        if isinstance(b.node, ast.ImportFrom):
            asname = None if new == b.alias.name else new
            text = ast.unparse(ast.ImportFrom(b.node.module, [ast.alias(b.alias.name, asname)], b.node.level))
        elif new == bound:
            text = ast.unparse(ast.Import([ast.alias(b.alias.name, b.alias.asname)]))
        elif b.alias.asname or "." not in b.alias.name:
            text = ast.unparse(ast.Import([ast.alias(b.alias.name, new)]))
        else:  # ``import a.b`` binds ``a`` (and imports a.b): keep both under the new name
            text = f"{new} = __import__({b.alias.name!r})"
        module = b.alias.name if isinstance(b.node, ast.Import) else (b.node.module if not b.node.level else None)
        f.add(key, text, is_import=True, line=b.node.lineno, module=module)
        return new

    def global_name(self, name: str, problems: list[str], deftime: bool = False) -> str | None:
        """A module-level name of the DAG file, carried into the lifted module (None: a builtin or unbound)."""
        f = self.file
        found = f.module_scope.get(name, [])
        if not found:
            if name == "__file__":
                self.notes.append(
                    f"task {self.tid}: its callable uses __file__, which is the path of the lifted module "
                    f"{f.module_name}.py beside the specs now, not of the DAG file"
                )
            elif name not in BUILTIN_NAMES:
                for star in f.stars:  # the name may come from a star import: carry them
                    module = star.module if not star.level else None
                    f.add(("star", star.lineno), ast.unparse(star), True, star.lineno, module)
            return None
        value = vars(f.runtime).get(name) if f.runtime is not None else None
        definition = len(found) == 1 and found[0].kind in ("import", "def", "class")  # carried as written
        machinery = is_machinery(value) if f.runtime is not None and not definition else None
        if machinery is not None:
            line = getattr(found[-1].node, "lineno", "?")
            problems.append(f"!{name} ({f.path}:{line}, a {machinery})")
            return None
        if len(found) == 1:
            b = found[0]
            if b.kind == "import":
                if isinstance(b.top, ast.Try):
                    return self.whole_statement(b.top, name)
                return self.import_alias(b, [name])
            if b.kind == "def" and isinstance(b.node, FUNCTION_NODES):
                return self.function(b.node, name)
            if b.kind == "assign" and self.changed_later(b.node, name):  # e.g. ITEMS = [] and ITEMS.append(1)
                return self.final_value(name, value, found, problems)
            if b.kind in ("class", "assign"):
                return self.statement(b.node, name)
        if all(b.kind == "import" and b.top is found[0].top and isinstance(b.top, ast.Try) for b in found):
            assert found[0].top is not None
            return self.whole_statement(found[0].top, name)
        if deftime:  # a default or decorator got the value of its moment (e.g. a loop's), not the last one
            lines = ", ".join(str(getattr(b.node, "lineno", "?")) for b in found)
            problems.append(f"~{name} (bound at lines {lines} of {f.path}: a loop's functions each got its own value)")
            return None
        return self.final_value(name, value, found, problems)

    def changed_later(self, node: ast.AST, name: str) -> bool:
        """Whether a literal assignment's value is not what the DAG module holds after it ran (mutated later)."""
        value = getattr(node, "value", None)
        if self.file.runtime is None or name not in vars(self.file.runtime) or not isinstance(value, ast.expr):
            return False
        if not literal(value):
            return False
        try:
            return bool(ast.literal_eval(value) != vars(self.file.runtime)[name])
        except Exception:  # a value whose comparison raises: keep the statement as written
            return False

    def final_value(self, name: str, value: Any, found: list[Binding], problems: list[str]) -> str | None:
        """A module-level name bound several times (or by a loop, ``with``, ...): a function body reads its final
        value when it runs, so carry that: plain data inlined, a module imported, a function of the file lifted."""
        f = self.file
        lines = ", ".join(str(getattr(b.node, "lineno", "?")) for b in found)
        if f.runtime is not None and name in vars(f.runtime):
            text = literal_repr(value)
            if text is not None:
                key = ("final", name)
                f.allocate(key, [name])
                f.add(key, f"{name} = {text}")
                return name
            if isinstance(value, ModuleType):
                key = ("final", name)
                f.allocate(key, [name])
                f.add(key, f"import {value.__name__}" + (f" as {name}" if value.__name__ != name else ""), True)
                return name
            code = getattr(inspect.unwrap(value), "__code__", None) if callable(value) else None
            node = f.find_def(code) if code is not None and same_file(code.co_filename, f.path) else None
            if node is not None:
                return self.function(node, name)
        problems.append(f"!{name} (bound at lines {lines} of {f.path}, to a value meta cannot carry)")
        return None

    def statement(self, node: ast.AST, name: str) -> str:
        """A module-level class or ``name = ...`` assignment, with what it uses."""
        f = self.file
        key = ("stmt", node.lineno, node.col_offset)  # type: ignore[attr-defined]
        if key in f.names:
            return f.names[key]
        f.allocate(key, [name])
        if isinstance(node, ast.ClassDef):
            stripped, kept = self.decorators(node)
            table = f.table(node)
            reads = loaded_names([*kept, *node.bases, *(k.value for k in node.keywords)])
            renames = self.needs(node, [], subtree_globals(table) | reads, set(), set())
        else:
            assert isinstance(node, ast.Assign | ast.AnnAssign)
            stripped = []
            reads = loaded_names([node.value] + ([] if f.future_annotations else [getattr(node, "annotation", None)]))
            renames = self.needs(node, [], reads, set(), set())  # (run once in the lifted module: final values)
        f.add(key, self.source(node, stripped, renames, None))
        return name

    def whole_statement(self, top: ast.stmt, name: str) -> str:
        """A module-level ``try: import a / except ImportError: import b as a`` kept whole."""
        f = self.file
        key = ("top", top.lineno)
        for bound in scope_bindings(ast.Module([top], [])).found:
            f.taken.setdefault(bound, key)
        f.add(key, ast.get_source_segment(f.text, top) or ast.unparse(top), is_import=True, line=top.lineno)
        return name

    # ---- source

    def source(self, node: ast.AST, stripped: list[ast.expr], renames: dict[str, str], new_name: str | None) -> str:
        """The statement's source from the DAG file: TaskFlow decorators removed, names renamed, dedented; the AST
        written back (``ast.unparse``, comments lost) when the text cannot be edited safely."""
        expected = copy.deepcopy(node)
        skip = {ast.dump(d) for d in stripped}
        if hasattr(expected, "decorator_list"):
            expected.decorator_list = [d for d in expected.decorator_list if ast.dump(d) not in skip]
        rebound = self.rebound(node, renames) if renames else set()
        if rebound:
            raise self.refuse(
                f"its callable needs {sorted(rebound)} renamed in the lifted module ({self.file.where(node)}), and "
                "they are also bound inside it",
                f"names {sorted(rebound)}",
                "distinct names for the module's functions and constants",
            )
        Renamer(renames).visit(expected)
        if new_name is not None and hasattr(expected, "name"):
            expected.name = new_name
        text = self.edited_text(node, stripped, renames, new_name)
        if text is not None:
            try:
                parsed = ast.parse(text).body
            except SyntaxError:
                parsed = []
            if len(parsed) == 1 and ast.dump(parsed[0]) == ast.dump(expected):
                return text
        return ast.unparse(expected) + "\n"

    def rebound(self, node: ast.AST, renames: dict[str, str]) -> set[str]:
        out: set[str] = set()
        for sub in ast.walk(node):
            if sub is not node and isinstance(sub, SCOPE_NODES[:3]) and sub.name in renames:
                out.add(sub.name)
            elif isinstance(sub, ast.arg) and sub.arg in renames:
                out.add(sub.arg)
            elif isinstance(sub, ast.Global | ast.Nonlocal):
                out |= set(sub.names) & set(renames)
            elif isinstance(sub, ast.alias) and (sub.asname or sub.name.split(".")[0]) in renames:
                out.add(sub.asname or sub.name)
        return out

    def edited_text(
        self, node: ast.AST, stripped: list[ast.expr], renames: dict[str, str], new_name: str | None
    ) -> str | None:
        f = self.file
        start, end = first_line(node), node.end_lineno  # type: ignore[attr-defined]
        raw = [line.encode("utf-8") for line in f.lines[start - 1 : end]]
        if not raw:
            return None
        indent = raw[0][: len(raw[0]) - len(raw[0].lstrip())]
        tail = raw[-1][node.end_col_offset :]  # type: ignore[attr-defined]
        if tail.strip() and not tail.strip().startswith(b"#"):
            return None  # another statement follows on the same line
        edits: list[tuple[int, int, int, bytes]] = []
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name) and sub.id in renames and not any(_inside(sub, d) for d in stripped):
                edits.append((sub.lineno - start, sub.col_offset, sub.end_col_offset, renames[sub.id].encode()))  # type: ignore[arg-type]
        if new_name is not None and getattr(node, "name", new_name) != new_name:
            line = raw[node.lineno - start]  # type: ignore[attr-defined]
            match = re.compile(rb"(async\s+def|def|class)\s+(" + re.escape(node.name.encode()) + rb")\b").search(  # type: ignore[attr-defined]
                line,
                node.col_offset,  # type: ignore[attr-defined]
            )
            if match is None:
                return None
            edits.append((node.lineno - start, match.start(2), match.end(2), new_name.encode()))  # type: ignore[attr-defined]
        for row, col, col_end, text in sorted(edits, key=lambda e: (e[0], -e[1])):
            raw[row] = raw[row][:col] + text + raw[row][col_end:]
        drop: set[int] = set()
        for dec in stripped:
            head = raw[dec.lineno - start][: dec.col_offset].strip()
            after = raw[dec.end_lineno - start][dec.end_col_offset :].strip()  # type: ignore[operator]
            if head != b"@" or (after and not after.startswith(b"#")):
                return None
            drop |= set(range(dec.lineno - start, dec.end_lineno - start + 1))  # type: ignore[operator]
        out = []
        for i, line in enumerate(raw):
            if i in drop:
                continue
            if start + i in f.string_lines:
                out.append(line)  # inside a multi-line string: its text is kept as it is
            elif line.startswith(indent):
                out.append(line[len(indent) :])
            elif not line.strip():
                out.append(b"\n")
            else:
                out.append(line)  # (the check against the AST decides)
        return b"".join(out).decode("utf-8")


def _inside(node: ast.AST, outer: ast.AST) -> bool:
    return any(sub is node for sub in ast.walk(outer))


class Renamer(ast.NodeTransformer):
    def __init__(self, renames: dict[str, str]) -> None:
        self.renames = renames

    def visit_Name(self, node: ast.Name) -> ast.Name:
        if node.id in self.renames:
            node.id = self.renames[node.id]
        return node


def defaults_and_annotations(node: ast.FunctionDef | ast.AsyncFunctionDef, future: bool) -> list[ast.AST | None]:
    """What a ``def`` evaluates where it is defined: defaults, and annotations unless they are postponed."""
    args = node.args
    out: list[ast.AST | None] = [*args.defaults, *args.kw_defaults]
    if not future:
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
        out += [a.annotation for a in every if a is not None] + [node.returns]
    return out


def subtree_globals(table: symtable.SymbolTable) -> set[str]:
    """The module-level names a function (or class) reads, its nested scopes included."""
    out: set[str] = set()
    stack = [table]
    while stack:
        current = stack.pop()
        for symbol in current.get_symbols():
            if symbol.is_global() and symbol.is_referenced():
                out.add(symbol.get_name())
        stack += current.get_children()
    return out


def same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


# -------------------------------------------------------------------------------------------- import run


class CallableLifter:
    """The lifted modules of one import: one per DAG file whose callables were lifted."""

    def __init__(self, folder: Path, dags: Iterable[Any], module_names: dict[str, str]) -> None:
        self.root = folder if folder.is_dir() else folder.parent
        self.module_names = module_names
        files = {os.path.realpath(d.fileloc) for d in dags if getattr(d, "fileloc", None)}
        self.lifted_names = lifted_module_names(self.root, files)
        self.runtime = {
            os.path.realpath(str(m.__file__)): m
            for name, m in list(sys.modules.items())
            if name in module_names and getattr(m, "__file__", None)
        }
        self.files: dict[str, DagFile | None] = {}
        self.imported: list[tuple[Any, list[DagFile]]] = []  # (ImportedDag, the files it lifted callables from)
        names = {p.stem if p.suffix == ".py" else p.name for p in self.root.iterdir()} if self.root.is_dir() else set()
        self.folder_modules = names - set(self.lifted_names.values())

    def file(self, path: str) -> DagFile | None:
        real = os.path.realpath(path)
        if real not in self.files:
            try:
                self.files[real] = DagFile(path, self.lifted_names[real], self.runtime.get(real), self.folder_modules)
            except (OSError, SyntaxError, UnicodeDecodeError, ValueError, KeyError):
                self.files[real] = None  # not a plain source file (a zip): callables keep their DAG-file names
        return self.files[real]

    def for_dag(self, dag: Any) -> DagCallables:
        return DagCallables(self, dag)

    def settle(self, scope: DagCallables, result: Any) -> None:
        """After ``result`` (an ImportedDag) was mapped with ``scope``: keep what it lifted and add the notes of its
        callables if it was imported; drop what it lifted if it was refused."""
        if result.pipeline is None:
            for file, state in scope.states.items():
                file.restore(state)
            return
        result.notes.extend(scope.notes)
        self.imported.append((result, list(scope.states)))

    def finish(self) -> list[ImportedFile]:
        """The lifted modules, to write beside the specs. Each imported DAG whose callables are in a module that
        imports a module of the dags folder gets a note: that module must be deployed beside the specs too."""
        for result, files in self.imported:
            for file in files:
                for module in file.needed_folder_modules():
                    result.notes.append(
                        f"the lifted module {file.module_name}.py imports {module}, a module of the dags folder: "
                        "deploy it beside the specs"
                    )
        out = []
        for path, lifted in sorted(self.files.items()):
            if lifted is None or not lifted.items:
                continue
            origin = os.path.relpath(path, os.path.realpath(self.root))
            out.append(ImportedFile(f"{lifted.module_name}.py", lifted.render(origin), lifted.path))
        return out


class DagCallables(dict[str, str]):
    """What the task mappers get as ``module_names`` while one DAG is imported: the Airflow module names of the DAG
    files (a dict, as before) plus ``reference``, which lifts a callable of the DAG file."""

    def __init__(self, lifter: CallableLifter, dag: Any) -> None:
        super().__init__(lifter.module_names)
        self.lifter, self.dag = lifter, dag
        self.notes: list[str] = []
        self.states: dict[DagFile, tuple[Any, ...]] = {}

    def reference(self, func: Any, tid: str) -> str | None:
        """``module:function`` of the callable (lifted when the DAG file defines it); None: not a function of the
        DAG file nor of the dags folder (the caller falls back to its import name); ImportRefused when it cannot be
        lifted."""
        try:
            target = inspect.unwrap(func)
        except ValueError:
            target = func
        code = getattr(target, "__code__", None)
        fileloc = getattr(self.dag, "fileloc", None)
        if code is None or not fileloc:
            return None
        if not same_file(code.co_filename, fileloc):
            return self.other_module(func, tid, code.co_filename)
        if code.co_name == "<lambda>":
            raise ImportRefused(
                f"task {tid}: its callable is a lambda ({fileloc}:{code.co_firstlineno}), not importable by name: "
                "meta references callables as module:function and lifts them out of the DAG file by their name",
                task=tid,
                received="python_callable=lambda ...",
                expected="a def (at module level, or in the @dag function)",
            )
        file = self.lifter.file(fileloc)
        node = file.find_def(code) if file is not None else None
        if file is None or node is None:
            return None
        if file not in self.states:
            self.states[file] = file.snapshot()
        lift = Lift(file, self.dag.dag_id, tid, self.notes)
        if target is not func and not lift.decorators(node)[1]:
            raise ImportRefused(
                f"task {tid}: its callable {node.name} ({file.where(node)}) is wrapped by a decorator applied outside "
                f"its def (f = deco(f), or python_callable=deco(f)); meta lifts a def with the decorators written "
                "above it",
                task=tid,
                received=f"python_callable {getattr(func, '__qualname__', func)!s} wrapping {node.name}",
                expected=f"@deco written above def {node.name}",
            )
        chain = file.chain(node)
        owner = chain[0] if len(chain) == 1 else None
        if isinstance(owner, ast.ClassDef) and not file.chain(owner) and not inspect.ismethod(func):
            # a function of a module-level class (Class.method): the class is carried whole, with what it uses
            if getattr(func, "__qualname__", None) == f"{owner.name}.{node.name}":
                renames = lift.needs(node, [], {owner.name}, set(), set())
                return f"{file.module_name}:{renames.get(owner.name, owner.name)}.{node.name}"
        return f"{file.module_name}:{lift.function(node)}"

    def other_module(self, func: Any, tid: str, filename: str) -> str | None:
        """A callable of another module: in the dags folder, referenced by its import name, with a note."""
        try:
            rel = Path(os.path.realpath(filename)).relative_to(os.path.realpath(self.lifter.root))
        except ValueError:
            return None  # an installed package: its import name is all a pipeline needs
        ref = callable_ref(func, self)
        if ref is not None:
            self.notes.append(
                f"task {tid}: its callable {ref} is in {rel}, a module of the dags folder (not the DAG file): "
                "deploy that module beside the specs"
            )
        return ref
