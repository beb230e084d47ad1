"""``meta graph``: a pipeline's task graph as Mermaid, Graphviz dot or plain text."""

from __future__ import annotations

import json

import click

from meta.cli.common import load, pick
from meta.spec.model import Pipeline

GRAPH_FORMATS = ("mermaid", "dot", "ascii")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(GRAPH_FORMATS), default="ascii", show_default=True)
@click.option("--pipeline", "pipeline_id", help="which pipeline, when the file defines several")
def graph(file: str, fmt: str, pipeline_id: str | None) -> None:
    """Print a pipeline's task graph as Mermaid, Graphviz dot or plain text."""
    p = pick(load([file]), pipeline_id, file)
    click.echo({"mermaid": _mermaid, "dot": _dot, "ascii": _ascii}[fmt](p))


def _rule_note(p: Pipeline, task_id: str) -> str | None:
    rule = p.settings_for(p.task(task_id)).trigger_rule
    return None if rule == "all_success" else str(rule)


def _mermaid(p: Pipeline) -> str:
    # Node ids n0, n1, ...: task ids may contain '.' and '-', which Mermaid reads as syntax.
    node = {t.id: f"n{i}" for i, t in enumerate(p.tasks)}
    lines = ["flowchart LR"]
    for t in p.tasks:
        note = _rule_note(p, t.id)
        label = f"{t.id}<br/><i>{note}</i>" if note else t.id
        lines.append(f'    {node[t.id]}["{label}"]')
    for t in p.tasks:
        lines += [f"    {node[u]} --> {node[t.id]}" for u in t.upstream]
    return "\n".join(lines)


def _dot(p: Pipeline) -> str:
    lines = [f"digraph {json.dumps(p.id)} {{", "    rankdir=LR;", "    node [shape=box];"]
    for t in p.tasks:
        note = _rule_note(p, t.id)
        label = f"{t.id} ({note})" if note else t.id
        lines.append(f"    {json.dumps(t.id)} [label={json.dumps(label)}];")
    for t in p.tasks:
        lines += [f"    {json.dumps(u)} -> {json.dumps(t.id)};" for u in t.upstream]
    lines.append("}")
    return "\n".join(lines)


def _ascii(p: Pipeline) -> str:
    from meta.spec.dag import topological_order

    order = topological_order({t.id: t.upstream for t in p.tasks})
    depth: dict[str, int] = {}
    for task_id in order:
        ups = p.task(task_id).upstream
        depth[task_id] = 1 + max((depth[u] for u in ups), default=-1)
    width = max(2 * depth[t] + len(t) for t in order)
    lines = [p.id]
    for task_id in order:
        t = p.task(task_id)
        name = "  " * depth[task_id] + task_id
        line = f"  {name.ljust(width)}"
        if t.upstream:
            line += f"  <- {', '.join(t.upstream)}"
        note = _rule_note(p, task_id)
        if note:
            line += f"  [{note}]"
        lines.append(line.rstrip())
    return "\n".join(lines)
