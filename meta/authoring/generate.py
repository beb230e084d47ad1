"""Dynamic generation: one YAML document -> one pipeline per entry (``generate:`` + ``template:``).

```yaml
generate:
  for_each: [{country: CH}, {country: DE}]   # or  from: countries.csv | countries.json  (relative to this file)
template:
  pipeline: "sales_${{ each.country | lower }}"
```

``${{ expr }}`` is a sandboxed Jinja expression over ``each`` (the entry) and ``index`` (0-based), evaluated when the
file is loaded. A string that is exactly one ``${{ expr }}`` keeps the value's type (a number stays a number, a list
stays a list). Run-time templates (``{{ ds }}``, ``{% if %}``) are left untouched.

Rendering works on the YAML node tree and keeps each node's position, so a problem in a generated pipeline points
at the template line that produced it and names the entry.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from meta.authoring import yamlpos
from meta.spec.checks import SECRET_KEY
from meta.spec.errors import Problem

if TYPE_CHECKING:
    from meta.authoring.build import YamlUnit

OPEN = "${{"
_ENV = SandboxedEnvironment(
    variable_start_string=OPEN,
    variable_end_string="}}",
    # Blocks and comments get markers nobody writes, so run-time Jinja ({% ... %}, {# ... #}) passes through.
    block_start_string="${%",
    block_end_string="%}",
    comment_start_string="${#",
    comment_end_string="#}",
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_EXACT = re.compile(r"^\s*\$\{\{(?P<expr>.*?)\}\}\s*$", re.DOTALL)
GENERATE_KEYS = ("for_each", "from")


class _RenderError(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


def expand(node: Node, value: dict[str, Any], file: str) -> tuple[list[YamlUnit], list[Problem]]:
    """The pipelines a ``generate:``/``template:`` document stands for, as units ready for ``build``."""
    from meta.authoring.build import YamlUnit

    problems: list[Problem] = []

    def problem(path: list[Any], message: str, at_key: bool = False) -> None:
        found, key_node, _ = yamlpos.find(node, path)
        line, col = yamlpos.mark_of(key_node if at_key and key_node is not None else found)
        problems.append(Problem(message, file, line, col))

    for key in value:
        if key not in ("generate", "template"):
            problem([key], f"unknown key {key!r} next to generate:/template:; expected only those two", at_key=True)
    template_node, _, depth = yamlpos.find(node, ["template"])
    if depth != 1 or not isinstance(value.get("template"), dict):
        problem(["template"], "generate: needs a 'template:' mapping holding the pipeline to generate")
        return [], problems
    entries = _entries(value.get("generate"), file, problem)
    if entries is None:
        return [], problems
    units = []
    for index, entry in enumerate(entries):
        origin = f" (generated for entry {index}: {_show(entry)})"
        try:
            rendered = _render(template_node, {"each": entry, "index": index})
        except _RenderError as exc:
            line, col = yamlpos.mark_of(exc.node)
            problems.append(Problem(f"{exc}{origin}", file, line, col))
            continue
        builder = yamlpos.Builder(file)
        unit_value = builder.value(rendered)
        problems.extend(replace(p, message=p.message + origin) for p in builder.problems)
        units.append(YamlUnit(unit_value, rendered, file, origin))
    return units, problems


def _entries(spec: Any, file: str, problem: Any) -> list[Any] | None:
    if not isinstance(spec, dict):
        problem(["generate"], "generate: must be a mapping with for_each: [...] or from: <file.csv|file.json>")
        return None
    for key in spec:
        if key not in GENERATE_KEYS:
            problem(["generate", key], f"unknown key {key!r} in generate; expected for_each or from", at_key=True)
    if ("for_each" in spec) == ("from" in spec):
        problem(["generate"], "generate: needs exactly one of for_each: [...] or from: <file.csv|file.json>")
        return None
    if "for_each" in spec:
        entries = spec["for_each"]
        if not isinstance(entries, list):
            problem(["generate", "for_each"], f"for_each must be a list; received {type(entries).__name__}")
            return None
        return entries
    source = spec["from"]
    base = Path(file).parent if not file.startswith("<") else Path.cwd()
    path = base / str(source)
    try:
        if path.suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as fh:
                return list(csv.DictReader(fh))
        if path.suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8-sig"))
            if not isinstance(data, list):
                problem(["generate", "from"], f"{path} must hold a JSON list; received {type(data).__name__}")
                return None
            return data
    except (OSError, ValueError, csv.Error) as exc:
        problem(["generate", "from"], f"cannot read entries from {path}: {exc}")
        return None
    problem(["generate", "from"], f"from: needs a .csv or .json file; received {source!r}")
    return None


def _show(entry: Any) -> str:
    """The entry for error messages, with credential-looking values hidden."""
    if isinstance(entry, dict):
        shown = {k: "(hidden)" if SECRET_KEY.search(str(k)) else v for k, v in entry.items()}
        return repr(shown)
    return repr(entry)


def _render(node: Node, variables: dict[str, Any]) -> Node:
    if type(node) is ScalarNode:
        if OPEN not in node.value or node.tag not in (yamlpos.PLAIN, yamlpos.STR):
            return node
        return _render_scalar(node, variables)
    if type(node) is SequenceNode:
        return SequenceNode(node.tag, [_render(n, variables) for n in node.value], node.start_mark, node.end_mark)
    if type(node) is MappingNode:
        pairs = [(_render(k, variables), _render(v, variables)) for k, v in node.value]
        return MappingNode(node.tag, pairs, node.start_mark, node.end_mark)
    return node


def _render_scalar(node: ScalarNode, variables: dict[str, Any]) -> Node:
    text = node.value
    exact = _EXACT.match(text)
    try:
        if exact and OPEN not in exact.group("expr") and "}}" not in exact.group("expr"):
            value = _ENV.compile_expression(exact.group("expr"), undefined_to_none=False)(**variables)
            if isinstance(value, Undefined):
                str(value)  # StrictUndefined raises here with Jinja's message
            return yamlpos.to_node(value, node)
        rendered = _ENV.from_string(text).render(**variables)
    except TemplateError as exc:
        raise _RenderError(node, f"template expression in {text!r} failed: {exc}") from None
    except Exception as exc:  # the author's expression raised (1/0, int('x'), ...): report it like a template error
        raise _RenderError(node, f"template expression in {text!r} failed: {type(exc).__name__}: {exc}") from None
    return ScalarNode(yamlpos.STR, rendered, node.start_mark, node.end_mark, style='"')
