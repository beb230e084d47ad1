"""Whatever a file holds, loading ends in pipelines or in ValidationFailed with located problems, never a crash."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meta.authoring.load import loads
from meta.authoring.yaml_writer import to_authoring
from meta.spec.errors import ValidationFailed
from tests.strategies import json_values, pipelines, safe_keys

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = ["pipeline", "tasks", "schedule", "params", "defaults", "sla", "alerts", "upstream", "shell", "python", "with"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any, delete: bool) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if delete and not rest:
            copy.pop(head, None)
        else:
            copy[head] = _replace(value[head], rest, new, delete)
        return copy
    copy_list = list(value)
    copy_list[head] = _replace(value[head], rest, new, delete)
    return copy_list


@st.composite
def broken_documents(draw: st.DrawFn) -> str:
    doc = to_authoring(draw(pipelines()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(doc)))
        new = draw(json_values | st.dictionaries(st.sampled_from(KEYS) | safe_keys, json_values, max_size=3))
        doc = _replace(doc, path, new, delete=draw(st.booleans()))
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


@SETTINGS
@given(broken_documents())
def test_broken_documents_give_located_problems(text: str) -> None:
    try:
        loads(text, "fuzz.yaml")
    except ValidationFailed as exc:
        assert exc.problems
        assert all(p.file == "fuzz.yaml" and p.message for p in exc.problems)


@SETTINGS
@given(st.text(st.sampled_from("ab:-[]{}#&*!|>'\" \n\t,?%@`0123456789"), max_size=80))
def test_random_text(text: str) -> None:
    try:
        loads(text, "fuzz.yaml")
    except ValidationFailed as exc:
        assert exc.problems and all(p.file == "fuzz.yaml" for p in exc.problems)
