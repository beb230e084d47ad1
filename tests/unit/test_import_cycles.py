"""No import cycles inside meta, meta_airflow and meta_prefect, so the ones broken in issue 9 cannot come back.

The import graph comes from grimp (import-linter's engine), which reads the source without importing it; imports
inside functions and under ``if TYPE_CHECKING:`` count, like import-linter's layer contracts. A cycle is a strongly
connected component of more than one module (Tarjan's algorithm), reported with the imports that tie it.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import grimp
import pytest

PACKAGES = ("meta", "meta_airflow", "meta_prefect")


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of PACKAGES it imports directly."""
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = set(graph.modules)
    return {m: set(graph.find_modules_directly_imported_by(m)) & modules for m in sorted(modules)}


def cycles(edges: Mapping[str, Set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module, each sorted, iteratively (no recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def describe(component: list[str], edges: Mapping[str, Set[str]]) -> str:
    members = set(component)
    ties = [f"  {a} -> {b}" for a in component for b in sorted(edges[a] & members)]
    return f"cycle of {len(component)} modules:\n" + "\n".join(ties)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set(), "c": {"b"}}, []),
        ({"a": {"b"}, "b": {"a"}, "c": {"d"}, "d": {"c"}}, [["a", "b"], ["c", "d"]]),
    ],
)
def test_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert sorted(cycles(edges)) == expected


def test_no_import_cycles() -> None:
    edges = import_graph()
    assert {m.split(".")[0] for m in edges} == set(PACKAGES)  # the graph really covers the three packages
    found = cycles(edges)
    assert not found, "\n\n".join(describe(c, edges) for c in found)
