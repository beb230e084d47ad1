"""YAML with positions and YAML 1.2 core-schema scalars.

PyYAML implements YAML 1.1: ``10:30`` is the integer 630 (sexagesimal), ``yes``/``on`` are booleans and duplicate
mapping keys silently overwrite each other. Authors of pipeline files expect none of that, so we let libyaml (or
the pure-Python parser) compose the node tree and build values ourselves:

* plain scalars follow the YAML 1.2 core schema (null, true/false, ints, floats; everything else is a string),
* a duplicate key is a problem naming both lines,
* ``<<`` merge keys still work (common for sharing defaults through anchors),
* nodes are kept, so any value can be located again by its path (``Located.position``) when an error needs it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from meta.spec.errors import Problem

try:  # libyaml is ~10x faster at parsing; the pure-Python parser gives the same nodes.
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml.composer import Composer
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser, Composer):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)
            Composer.__init__(self)


TAG = "tag:yaml.org,2002:"
PLAIN = "!plain"  # our marker: an untagged plain scalar, typed by the YAML 1.2 core schema when constructed
STR, INT, FLOAT, BOOL, NULL, MAP, SEQ = (TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq"))
MERGE_KEY = "<<"

_INT = re.compile(r"^[-+]?[0-9]+$")
_OCT = re.compile(r"^0o[0-7]+$")
_HEX = re.compile(r"^0x[0-9a-fA-F]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(inf|Inf|INF)$")
_NAN = re.compile(r"^\.(nan|NaN|NAN)$")
_NULLS = frozenset({"~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


class _Loader(_Parser):
    """Composes nodes only. Tag resolution is deferred (see ``core_scalar``), which is also faster."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.yaml_path_resolvers: dict[Any, Any] = {}  # the pure-Python Composer asks for these

    def resolve(self, kind: type, value: Any, implicit: Sequence[bool]) -> str:
        if kind is ScalarNode:
            return PLAIN if implicit[0] else STR
        return SEQ if kind is SequenceNode else MAP

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:  # pure-Python Composer hooks
        return None

    def ascend_resolver(self) -> None:
        return None


def core_scalar(text: str) -> Any:
    """Type a plain scalar with the YAML 1.2 core schema."""
    if not text:
        return None
    first = text[0]
    if first in "0123456789-+.":
        if _INT.match(text):
            return int(text)
        if _FLOAT.match(text):
            return float(text)
        if _INF.match(text):
            return -math.inf if first == "-" else math.inf
        if _NAN.match(text):
            return math.nan
    elif first in "nN~" and text in _NULLS:
        return None
    elif first in "tT" and text in _TRUE:
        return True
    elif first in "fF" and text in _FALSE:
        return False
    if first == "0" and len(text) > 2:
        if _OCT.match(text):
            return int(text[2:], 8)
        if _HEX.match(text):
            return int(text[2:], 16)
    return text


def _tagged_scalar(node: Node) -> Any:
    tag, text = node.tag, node.value
    if tag == STR:
        return text
    if tag == INT:
        return int(text, 0) if text[:2].lower() in ("0x", "0o") else int(text)
    if tag == FLOAT:
        value = core_scalar(text)
        return float(value)
    if tag == BOOL:
        value = core_scalar(text)
        if not isinstance(value, bool):
            raise ValueError(f"!!bool needs true or false, got {text!r}")
        return value
    if tag == NULL:
        return None
    raise ValueError(f"unsupported YAML tag {tag!r}; use plain values, lists and mappings")


@dataclass
class Document:
    """One YAML document: its root node and the file it came from."""

    node: Node
    file: str

    def position(self, node: Node) -> tuple[int, int]:
        mark = node.start_mark
        return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


class Builder:
    """Builds Python values from nodes; collects duplicate-key and tag problems instead of stopping."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def problem(self, node: Node, message: str) -> None:
        line, col = mark_of(node)
        self.problems.append(Problem(message, file=self.file, line=line, col=col))

    def value(self, node: Node) -> Any:
        """The Python value of ``node`` (the entry point: guards against recursive aliases)."""
        try:
            return self._value(node)
        except RecursionError:
            self.problem(node, "a recursive YAML alias (a value containing itself) or nesting too deep to load")
            return None

    # Hot path: every node of every file passes here, so dispatch on exact types and avoid helper calls.
    def _value(self, node: Node) -> Any:
        cls = type(node)
        if cls is ScalarNode:
            return core_scalar(node.value) if node.tag == PLAIN else self._tagged(node)
        if cls is SequenceNode:
            if node.tag != SEQ:
                self.problem(node, f"unsupported YAML tag {node.tag!r}; use plain lists")
            build = self._value
            return [build(item) for item in node.value]
        if node.tag != MAP:
            self.problem(node, f"unsupported YAML tag {node.tag!r}; use plain mappings")
        return self._mapping(node)

    def _tagged(self, node: Node) -> Any:
        try:
            return _tagged_scalar(node)
        except ValueError as exc:
            self.problem(node, str(exc))
            return node.value

    def _mapping(self, node: Node) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        merged: dict[Any, Any] | None = None
        build = self._value
        for key_node, value_node in node.value:
            if type(key_node) is not ScalarNode:
                self.problem(
                    key_node, "a mapping key must be a plain value (a string or number), not a list or a mapping"
                )
                continue
            if key_node.tag == PLAIN:
                if key_node.value == MERGE_KEY:
                    merged = merged if merged is not None else {}
                    for source in self._merge_sources(value_node):  # earlier sources win, as in YAML 1.1 merges
                        for k, v in self._mapping(source).items():
                            merged.setdefault(k, v)
                    continue
                key = core_scalar(key_node.value)
            else:
                key = self._tagged(key_node)
            if key in out:
                self._duplicate(node, key, key_node)
                continue
            out[key] = build(value_node)
        if merged:
            out = {**{k: v for k, v in merged.items() if k not in out}, **out}
        return out

    def _duplicate(self, node: Node, key: Any, again: Node) -> None:
        first = next(k for k, _ in node.value if type(k) is ScalarNode and _same_key(self._value(k), key))
        self.problem(
            again,
            f"duplicate key {key!r}: first defined at line {mark_of(first)[0]}, again at line {mark_of(again)[0]}; "
            "YAML would silently keep only the last one",
        )

    def _merge_sources(self, node: Node) -> Iterator[MappingNode]:
        items = node.value if type(node) is SequenceNode else [node]
        for item in items:
            if type(item) is MappingNode:
                yield item
            else:
                self.problem(item, "a '<<' merge key needs a mapping (or a list of mappings), usually an *alias")


def compose_all(text: str, file: str) -> tuple[list[Document], list[Problem]]:
    """Parse every document of ``text``; a syntax error becomes a Problem with its position."""
    loader = _Loader(text)
    docs: list[Document] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                docs.append(Document(node, file))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        return docs, [Problem(f"YAML syntax error: {what}", file=file, line=line, col=col)]
    except yaml.YAMLError as exc:
        return docs, [Problem(f"YAML syntax error: {exc}", file=file)]
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose is not None:
            dispose()
    return docs, []


# ---------------------------------------------------------------------------------------------- locating


def _same_key(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _key_matches(key_node: Node, wanted: Any) -> bool:
    if type(key_node) is not ScalarNode:
        return False
    key = core_scalar(key_node.value) if key_node.tag == PLAIN else key_node.value
    return key == wanted or str(key) == str(wanted)


def find(node: Node, path: Sequence[Any]) -> tuple[Node, Node | None, int]:
    """Walk ``path`` from ``node`` as far as it exists.

    Returns (deepest value node reached, the key node that led to it or None, how many path elements matched).
    """
    key_node: Node | None = None
    depth = 0
    for part in path:
        nxt: tuple[Node, Node | None] | None = None
        if type(node) is MappingNode:
            nxt = _find_in_mapping(node, part)
        elif type(node) is SequenceNode and isinstance(part, int) and 0 <= part < len(node.value):
            nxt = (node.value[part], None)
        if nxt is None:
            break
        node, key_node = nxt
        depth += 1
    return node, key_node, depth


def _find_in_mapping(node: MappingNode, part: Any) -> tuple[Node, Node] | None:
    merges = []
    for key_node, value_node in node.value:
        if type(key_node) is ScalarNode and key_node.tag == PLAIN and key_node.value == MERGE_KEY:
            merges.append(value_node)
        elif _key_matches(key_node, part):
            return value_node, key_node
    for merge in merges:
        for source in merge.value if type(merge) is SequenceNode else [merge]:
            if type(source) is MappingNode:
                hit = _find_in_mapping(source, part)
                if hit is not None:
                    return hit
    return None


def mark_of(node: Node | None) -> tuple[int | None, int | None]:
    if node is None or node.start_mark is None:
        return None, None
    return node.start_mark.line + 1, node.start_mark.column + 1


# ---------------------------------------------------------------------------------------------- values -> nodes


def to_node(value: Any, like: Node) -> Node:
    """A node holding ``value`` that reports ``like``'s position (used for values produced by templates)."""
    start, end = like.start_mark, like.end_mark
    if isinstance(value, dict):
        pairs = [(to_node(k, like), to_node(v, like)) for k, v in value.items()]
        return MappingNode(MAP, pairs, start, end)
    if isinstance(value, list | tuple):
        return SequenceNode(SEQ, [to_node(v, like) for v in value], start, end)
    if value is None:
        return ScalarNode(NULL, "null", start, end)
    if isinstance(value, bool):
        return ScalarNode(BOOL, "true" if value else "false", start, end)
    if isinstance(value, int):
        return ScalarNode(INT, str(value), start, end)
    if isinstance(value, float):
        text = (
            ".nan"
            if value != value
            else (".inf" if value == math.inf else "-.inf" if value == -math.inf else repr(value))
        )
        return ScalarNode(FLOAT, text, start, end)
    return ScalarNode(STR, str(value), start, end)
