"""Plugin hygiene: the run request every backend receives, the checks every backend shares, typed hooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from meta.plugins import manager
from meta.plugins.protocols import ChannelKind, SecretProvider
from meta.plugins.targets import Target
from meta.semantics.request import InvalidRunRequest, RunRequest
from meta.spec.errors import CompileError, PluginError, ValidationFailed
from meta.spec.model import Pipeline


def pipeline(tasks: list[dict[str, Any]] | None = None, **fields: Any) -> Pipeline:
    tasks = tasks or [{"id": "t", "action": {"kind": "noop"}}]
    return Pipeline.model_validate({"id": "p", "tasks": tasks, **fields})


# -- RunRequest ---------------------------------------------------------------------------------------------------


def test_run_request_resolves_params_and_defaults_the_run() -> None:
    p = pipeline(params={"country": {"type": "string", "default": "DE"}, "days": {"type": "integer", "default": 1}})
    before = datetime.now(UTC)
    request = RunRequest.build(p, params={"days": 7})
    assert request.params == {"country": "DE", "days": 7}
    assert request.logical_date.tzinfo is not None and request.logical_date >= before
    assert request.run_id == f"manual__{request.logical_date.isoformat()}" and not request.run_id_given


def test_run_request_reads_a_naive_date_as_utc_and_keeps_an_offset() -> None:
    p = pipeline()
    naive = RunRequest.build(p, logical_date=datetime(2026, 1, 31, 1, 0))
    assert naive.logical_date == datetime(2026, 1, 31, 1, 0, tzinfo=UTC)
    assert naive.run_id == "manual__2026-01-31T01:00:00+00:00"
    zurich = timezone(timedelta(hours=1))
    assert RunRequest.build(p, logical_date=datetime(2026, 1, 31, 2, 0, tzinfo=zurich)).logical_date.utcoffset() == (
        timedelta(hours=1)
    )


def test_run_request_refuses_bad_params_and_run_ids_before_anything_runs() -> None:
    p = pipeline(params={"days": {"type": "integer", "default": 1}})
    with pytest.raises(ValidationFailed, match="unknown param 'dayz'"):
        RunRequest.build(p, params={"dayz": 2})
    with pytest.raises(ValidationFailed, match="param 'days'"):
        RunRequest.build(p, params={"days": "seven"})
    with pytest.raises(InvalidRunRequest, match=r"invalid run id '\.\./x'"):
        RunRequest.build(p, run_id="../x")
    given = RunRequest.build(p, run_id="nightly_1")
    assert given.run_id == "nightly_1" and given.run_id_given


def test_a_run_request_is_for_one_pipeline() -> None:
    request = RunRequest.build(pipeline())
    with pytest.raises(InvalidRunRequest, match="for pipeline 'p' was given pipeline 'other'"):
        request.for_pipeline(
            Pipeline.model_validate({"id": "other", "tasks": [{"id": "t", "action": {"kind": "noop"}}]})
        )


# -- shared checks ------------------------------------------------------------------------------------------------


class BareTarget(Target):
    """A third-party backend that refuses nothing of its own: the shared checks still apply."""

    name = "bare"


def bare() -> BareTarget:
    target = BareTarget()
    target.op_lookup = manager.get_op  # what the plugin manager does when a plugin registers it
    return target


def test_a_target_the_manager_did_not_register_cannot_skip_the_op_checks() -> None:
    with pytest.raises(PluginError, match="'bare' was not registered through the plugin manager"):
        BareTarget().check(pipeline())


@pytest.mark.parametrize("backend", ["local", "airflow", "prefect", "bare"])
def test_every_backend_refuses_an_unknown_op_type(backend: str) -> None:
    if backend in ("airflow", "prefect"):
        pytest.importorskip(f"meta_{backend}")
    target = bare() if backend == "bare" else manager.get_target(backend)
    p = pipeline([{"id": "x", "action": {"kind": "op", "op": "no_such_op"}}])
    (error,) = target.check(p)
    assert error.feature == "op type 'no_such_op'" and error.task == "x" and error.target == backend
    assert "no op type named 'no_such_op'" in str(error)
    with pytest.raises(CompileError):
        target.ensure_supported(p)


@pytest.mark.parametrize("backend", ["local", "prefect", "bare"])
def test_airflow_operator_tasks_are_refused_except_on_airflow(backend: str) -> None:
    if backend == "prefect":
        pytest.importorskip("meta_prefect")
    target = bare() if backend == "bare" else manager.get_target(backend)
    p = pipeline([{"id": "x", "action": {"kind": "airflow_operator", "operator": "pkg.mod.Op"}}])
    assert [e.feature for e in target.check(p)] == ["the Airflow operator pkg.mod.Op"]


def test_airflow_takes_airflow_operator_tasks() -> None:
    pytest.importorskip("meta_airflow")
    p = pipeline([{"id": "x", "action": {"kind": "airflow_operator", "operator": "pkg.mod.Op"}}])
    assert manager.get_target("airflow").check(p) == []


# -- typed hooks --------------------------------------------------------------------------------------------------


def test_registered_channels_and_secret_providers_have_the_hook_types() -> None:
    channels = manager.channels()
    assert {"slack", "email", "webhook"} <= set(channels)
    assert all(isinstance(c, ChannelKind) for c in channels.values())
    providers = manager.secret_providers()
    assert [p.name for p in providers][:2] == ["env", "file"]
    assert all(isinstance(p, SecretProvider) for p in providers)
