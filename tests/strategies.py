"""Hypothesis strategies for random *valid* pipelines, reusable by every test suite.

``pipelines()`` draws acyclic task graphs with every action kind (ops optional: an op name must be registered to
load), every schedule form, params in shorthand and full form, SLAs, alerts, and strings chosen to trip YAML
(``yes``, ``10:30``, ``0o17``, quotes, ``{{ ds }}``, newlines, non-ASCII). Durations are whole milliseconds: the
model serializes durations to the millisecond. Floats are finite: JSON cannot carry infinity or NaN (pydantic
writes null), so a pipeline holding one would not survive a JSON round trip.
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any

from hypothesis import strategies as st

from meta.plugins import manager
from meta.plugins.hookspecs import hookimpl
from meta.plugins.ops import OpType
from meta.spec.checks import SECRET_KEY
from meta.spec.model import Pipeline
from meta.spec.states import TriggerRule

# Strings that YAML 1.1 or 1.2 would read as something else when unquoted.
TRICKY = ["yes", "no", "on", "off", "y", "n", "true", "null", "~", "10:30", "0o17", "0x1F", "1e3", ".5", "-.inf", "007"]
TRICKY += ["", " ", "a: b", "- x", "# not a comment", "'quoted'", '"dq"', "{{ ds }}", "${secret:X}", "<<", "@daily"]

_ID_FIRST = string.ascii_letters + string.digits + "_"
_ID_REST = _ID_FIRST + ".-"
identifiers = st.one_of(
    st.builds(lambda a, b: a + b, st.sampled_from(_ID_FIRST), st.text(_ID_REST, max_size=12)),
    st.sampled_from(["true", "null", "yes", "1", "0o17", "1e3", "1_0", "on"]),
)
texts = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Zl", "Zp")), max_size=30),
    st.text(st.sampled_from("ab \n\t:#'\"{}[]-"), max_size=20),
    st.sampled_from(TRICKY),
)
non_empty_texts = texts.filter(lambda s: len(s) > 0)
safe_keys = st.one_of(st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}\Z"), st.sampled_from(TRICKY)).filter(
    lambda k: not SECRET_KEY.search(k)
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),  # JSON has no infinity: pydantic writes null
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(safe_keys, inner, max_size=3),
    max_leaves=8,
)
json_dicts = st.dictionaries(safe_keys, json_values, max_size=3)
durations = st.integers(0, 10**9).map(lambda ms: timedelta(milliseconds=ms))
callables = st.from_regex(r"\A[a-z_][a-z0-9_]{0,6}(\.[a-z_][a-z0-9_]{0,6}){0,2}:[a-z_][a-z0-9_]{0,6}\Z")
channels = st.from_regex(r"\A(slack|email|webhook):[a-z0-9][a-z0-9_.@+-]{0,10}\Z")
dataset_uris = st.from_regex(r"\A(postgres|s3|file)://[a-z0-9/._-]{1,20}\Z")
timezones = st.sampled_from(["UTC", "Europe/Zurich", "America/New_York", "Asia/Tokyo"])
datetimes = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: d.replace(microsecond=0)
) | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
times = st.builds(time, st.integers(0, 23), st.integers(0, 59), st.sampled_from([0, 0, 30]))


def _action(include_ops: bool) -> st.SearchStrategy[dict[str, Any]]:
    options = [
        st.builds(
            lambda c, env, cwd: {"kind": "shell", "command": c, "env": env, **({"cwd": cwd} if cwd else {})},
            non_empty_texts,
            st.dictionaries(safe_keys, texts, max_size=2),
            st.none() | texts,
        ),
        st.builds(lambda c, kw: {"kind": "python", "callable": c, "kwargs": kw}, callables, json_dicts),
        st.builds(lambda c, kw: {"kind": "branch", "callable": c, "kwargs": kw}, callables, json_dicts),
        st.builds(
            lambda conn, stmt, params: {"kind": "sql", "conn": conn, "statement": stmt, "parameters": params},
            identifiers,
            non_empty_texts,
            json_dicts,
        ),
        st.just({"kind": "noop"}),
        st.builds(
            lambda op, args: {"kind": "airflow_operator", "operator": op, "arguments": args},
            st.from_regex(r"\A[a-z_]{1,6}(\.[a-z_]{1,6}){1,3}\.[A-Z][A-Za-z]{0,8}\Z"),
            json_dicts,
        ),
    ]
    if include_ops:
        options.append(st.builds(lambda w: {"kind": "op", "op": "hyp_op", "with": w}, json_dicts))
    return st.one_of(*options)


def _settings() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "retries": st.integers(0, 10),
            "retry_delay": durations,
            "retry_backoff": st.floats(1.0, 10.0),
            "max_retry_delay": durations,
            "timeout": durations,
            "pool": identifiers,
        },
    )


@st.composite
def _param(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean", "array", "object", None]))
    values = {
        "string": texts,
        "integer": st.integers(-1000, 1000),
        "number": st.floats(-1e6, 1e6),
        "boolean": st.booleans(),
        "array": st.lists(scalars, max_size=3),
        "object": json_dicts,
        None: json_values,
    }[kind]
    out: dict[str, Any] = {} if kind is None else {"type": kind}
    if draw(st.booleans()):
        out["description"] = draw(texts)
    if draw(st.integers(0, 4)) == 0:
        out["required"] = True
        if draw(st.booleans()):
            out["default"] = draw(values)
    else:
        out["default"] = draw(values)
    return out


def _escalation(after: timedelta, to: list[str]) -> dict[str, Any]:
    return {"after": after, "channels": to}


def _deadline() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(
            lambda r, i: {"reference": r, "interval": i}, st.sampled_from(["logical_date", "queued_at"]), durations
        ),
        st.builds(
            lambda i, n, m: {"reference": "average_runtime", "interval": i, "max_runs": n, "min_runs": min(m, n)},
            durations,
            st.integers(1, 20),
            st.integers(1, 20),
        ),
        st.builds(
            lambda i, at: {"reference": "fixed", "interval": i, "at": at},
            durations,
            st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
        ),
    )


_default_rule = st.fixed_dictionaries({}, optional={"trigger_rule": st.sampled_from(list(TriggerRule))})
ALERT_KEYS = ("on_failure", "on_retry", "on_success", "on_sla_miss")


@st.composite
def pipelines(draw: st.DrawFn, include_ops: bool = False, max_tasks: int = 6) -> Pipeline:
    ids = draw(st.lists(identifiers, min_size=1, max_size=max_tasks, unique=True))
    tasks = []
    for i, tid in enumerate(ids):
        upstream = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3)) if i else []
        task: dict[str, Any] = {"id": tid, "action": draw(_action(include_ops)), "upstream": upstream}
        task.update(draw(_settings()))
        extra = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "trigger_rule": st.sampled_from(list(TriggerRule)),
                    "max_active": st.integers(1, 5),
                    "inputs": st.lists(dataset_uris, max_size=2),
                    "outputs": st.lists(dataset_uris, max_size=2),
                    "params": json_dicts,
                    "description": texts,
                    "max_duration": durations,
                },
            )
        )
        tasks.append({**task, **extra})
    schedule = draw(
        st.one_of(
            st.none(),
            st.sampled_from(["@daily", "@hourly", "0 1 * * *", "*/15 * * * 1-5", "30 10 1 */3 *"]).map(
                lambda c: {"kind": "cron", "cron": c}
            ),
            st.integers(1, 10**7).map(lambda s: {"kind": "interval", "every": timedelta(seconds=s)}),
            st.builds(
                lambda ds, mode: {"kind": "datasets", "datasets": ds, "mode": mode},
                st.lists(dataset_uris, min_size=1, max_size=3),
                st.sampled_from(["all", "any"]),
            ),
        )
    )
    start = draw(st.none() | datetimes)
    data: dict[str, Any] = {
        "id": draw(identifiers),
        "tasks": tasks,
        "schedule": schedule,
        "timezone": draw(timezones),
        "catchup": draw(st.booleans()),
        "start_date": start,
        "params": draw(st.dictionaries(safe_keys, _param(), max_size=3)),
        "defaults": {
            **draw(_settings()),
            **draw(st.fixed_dictionaries({}, optional={"trigger_rule": st.sampled_from(list(TriggerRule))})),
        },
    }
    optional = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "description": texts,
                "owner": texts,
                "team": texts,
                "tags": st.lists(texts, max_size=3),
                "max_active_runs": st.integers(1, 5),
                "max_active_tasks": st.integers(1, 5),
                "sla": st.fixed_dictionaries(
                    {"max_duration": durations},
                    optional={
                        "fresh_within": durations,
                        "deadlines": st.lists(_deadline(), max_size=2),
                        # finish_by / start_by need a cron or interval schedule (the slots they apply to)
                        **(
                            {"finish_by": times, "start_by": times}
                            if schedule and schedule["kind"] in ("cron", "interval")
                            else {}
                        ),
                    },
                ),
                "alerts": st.fixed_dictionaries(
                    {},
                    optional={
                        k: st.lists(channels, max_size=2)
                        for k in ("on_failure", "on_retry", "on_success", "on_sla_miss")
                    },
                ).flatmap(
                    lambda routes: st.fixed_dictionaries(
                        {k: st.just(v) for k, v in routes.items()},
                        optional={
                            "sla_escalation": st.builds(
                                _escalation, durations, st.lists(channels, min_size=1, max_size=2)
                            )
                        },
                    )
                ),
            },
        )
    )
    data.update(optional)
    if start is not None and draw(st.booleans()):
        data["end_date"] = start + timedelta(days=draw(st.integers(0, 1000)))
    return Pipeline.model_validate(data)


@contextmanager
def registered_ops(*op_types: OpType) -> Iterator[None]:
    """Register ``op_types`` through a real pluggy plugin for the duration of a test.

    Third-party entry points are left out (``meta.plugins.manager`` rebuilds its manager without them), so the test sees
    meta's built-ins plus these op types, whatever else happens to be installed.
    """

    class _TestOps:
        @staticmethod
        @hookimpl
        def register_ops(register: Any) -> None:
            for op_type in op_types:
                register(op_type)

    saved = manager.ENTRY_POINT_GROUP
    manager.ENTRY_POINT_GROUP = "meta.plugins.none-in-tests"
    manager.reset()
    manager.plugin_manager().register(_TestOps(), "test-ops")
    try:
        yield
    finally:
        manager.ENTRY_POINT_GROUP = saved
        manager.reset()
