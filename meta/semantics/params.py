"""Run parameters: the pipeline's defaults merged with the values a run supplies, each checked against its Param."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from meta.spec.checks import did_you_mean
from meta.spec.errors import Problem, ValidationFailed
from meta.spec.model import Pipeline


def resolve_params(pipeline: Pipeline, supplied: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``supplied``; every problem (unknown name, missing required, bad value) is reported."""
    supplied = dict(supplied or {})
    problems: list[Problem] = []
    for name in supplied:
        if name not in pipeline.params:
            known = list(pipeline.params)
            problems.append(
                Problem(
                    f"unknown param {name!r}{did_you_mean(name, known)}; this pipeline takes: "
                    f"{', '.join(known) or 'no params'}",
                    pipeline=pipeline.id,
                )
            )
    values: dict[str, Any] = {}
    for name, param in pipeline.params.items():
        if name in supplied:
            value = supplied[name]
        elif param.required:
            problems.append(
                Problem(f"param {name!r} is required and has no default; pass a value", pipeline=pipeline.id)
            )
            continue
        else:
            value = param.default
        problem = param.check_value(value)
        if problem:
            problems.append(Problem(f"param {name!r}: {problem}", pipeline=pipeline.id))
        values[name] = value
    if problems:
        raise ValidationFailed(problems)
    return values


def parse_param_args(pipeline: Pipeline, pairs: Iterable[str]) -> dict[str, Any]:
    """Turn ``k=v`` strings into values: the text itself if the param accepts it, else the text read as JSON
    (so ``--param days=7`` gives an integer for an integer param and ``--param country=007`` stays a string)."""
    out: dict[str, Any] = {}
    problems: list[Problem] = []
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            problems.append(Problem(f"--param expects NAME=VALUE, got {pair!r}", pipeline=pipeline.id))
            continue
        param = pipeline.params.get(name)
        if param is not None and param.check_value(text) is None:
            out[name] = text
            continue
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    if problems:
        raise ValidationFailed(problems)
    return out
