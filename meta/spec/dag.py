"""DAG helpers on plain ``task id -> upstream ids`` mappings: cycle detection and a stable topological order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def find_cycle(upstream: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one cycle as a path that starts and ends on the same task (a -> b -> a), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(upstream, WHITE)
    downstream: dict[str, list[str]] = {k: [] for k in upstream}
    for node, ups in upstream.items():
        for up in ups:
            if up in downstream:
                downstream[up].append(node)
    for start in upstream:
        if colour[start] != WHITE:
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        colour[start] = GREY
        while stack:
            node, i = stack[-1]
            children = downstream[node]
            if i < len(children):
                stack[-1] = (node, i + 1)
                child = children[i]
                if colour[child] == GREY:
                    return [*path[path.index(child) :], child]
                if colour[child] == WHITE:
                    colour[child] = GREY
                    stack.append((child, 0))
                    path.append(child)
            else:
                colour[node] = BLACK
                stack.pop()
                path.pop()
    return None


def topological_order(upstream: Mapping[str, Sequence[str]]) -> list[str]:
    """Kahn's algorithm, stable: among ready tasks the one defined first comes first."""
    order_index = {k: i for i, k in enumerate(upstream)}
    remaining = {k: len(set(v)) for k, v in upstream.items()}
    downstream: dict[str, list[str]] = {k: [] for k in upstream}
    for node, ups in upstream.items():
        for up in set(ups):
            downstream[up].append(node)
    ready = sorted((k for k, n in remaining.items() if n == 0), key=order_index.__getitem__)
    out: list[str] = []
    while ready:
        node = ready.pop(0)
        out.append(node)
        newly = []
        for child in downstream[node]:
            remaining[child] -= 1
            if remaining[child] == 0:
                newly.append(child)
        ready = sorted(ready + newly, key=order_index.__getitem__)
    if len(out) != len(upstream):
        raise ValueError(f"dependency cycle: {' -> '.join(find_cycle(upstream) or [])}")
    return out
