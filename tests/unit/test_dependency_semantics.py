"""The pure judge of cross-pipeline dependencies (meta.semantics.dependencies) and the model's checks of depends_on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meta.authoring.load import loads
from meta.semantics.dependencies import READY, TIMED_OUT, WAITING, UpstreamRun, evaluate, next_check, trigger_key
from meta.spec.errors import ValidationFailed
from meta.spec.model import Pipeline

T0 = datetime(2026, 12, 3, 1, 0, tzinfo=UTC)
WATCH = T0 - timedelta(hours=1)


def pipeline(depends_on: list[object], **extra: object) -> Pipeline:
    return Pipeline.model_validate(
        {"id": "down", "depends_on": depends_on, "tasks": [{"id": "t", "action": {"kind": "noop"}}], **extra}
    )


def run(pipeline_id: str, run_id: str, state: str, day: int = 3, backend: str = "airflow", **kw: object) -> UpstreamRun:
    logical = datetime(2026, 12, day, 1, 0, tzinfo=UTC)
    ended = kw.pop("ended_at", logical + timedelta(minutes=5) if state in ("success", "failed") else None)
    return UpstreamRun(
        backend,
        pipeline_id,
        run_id,
        state,
        logical,
        started_at=logical + timedelta(minutes=1),
        ended_at=ended,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_align_same_is_ready_once_every_upstream_succeeded_for_that_logical_date() -> None:
    down = pipeline([{"pipeline": "a"}, {"pipeline": "b", "backend": "prefect"}])
    now = T0 + timedelta(minutes=10)
    waits = evaluate(down, [run("a", "a1", "success"), run("b", "b1", "running", backend="prefect")], WATCH, now)
    assert [(w.slot, w.state) for w in waits] == [("2026-12-03T01:00:00+00:00", WAITING)]
    assert [n.upstream for n in waits[0].missing] == ["b on prefect"]
    assert "running (prefect run b1)" in waits[0].missing[0].detail
    # b's run on another backend than the one the dependency names does not count
    waits = evaluate(down, [run("a", "a1", "success"), run("b", "b9", "success", backend="airflow")], WATCH, now)
    assert waits[0].state == WAITING
    waits = evaluate(down, [run("a", "a1", "success"), run("b", "b1", "success", backend="prefect")], WATCH, now)
    assert waits[0].state == READY
    assert [(r.pipeline_id, r.run_id) for r in waits[0].upstream_runs] == [("a", "a1"), ("b", "b1")]


def test_each_logical_date_is_its_own_slot_and_history_before_the_watch_starts_nothing() -> None:
    down = pipeline(["a"])
    old = run("a", "old", "success", day=1)  # ended two days before the watch began
    runs = [old, run("a", "d2", "success", day=2, ended_at=WATCH + timedelta(minutes=1)), run("a", "d3", "running")]
    waits = evaluate(down, runs, WATCH, T0 + timedelta(minutes=10))
    assert [(w.slot[:10], w.state) for w in waits] == [("2026-12-02", READY), ("2026-12-03", WAITING)]


def test_a_failed_upstream_waits_until_the_timeout_then_times_out() -> None:
    down = pipeline([{"pipeline": "a", "timeout": "2h"}])
    failed = run("a", "a1", "failed")
    since = failed.started_at
    assert since is not None
    early = evaluate(down, [failed], WATCH, since + timedelta(hours=1))[0]
    assert (early.state, early.until) == (WAITING, since + timedelta(hours=2))
    assert next_check([early], down, since + timedelta(hours=1)) == since + timedelta(hours=2)
    late = evaluate(down, [failed], WATCH, since + timedelta(hours=2))[0]
    assert late.state == TIMED_OUT
    # a retry that succeeds in time makes it ready instead
    assert evaluate(down, [failed, run("a", "a2", "success")], WATCH, since + timedelta(hours=1))[0].state == READY


def test_a_task_dependency_needs_only_that_task_to_succeed() -> None:
    down = pipeline([{"pipeline": "a", "task": "load"}])
    going = run("a", "a1", "running", task_states={"load": "success", "report": "running"})
    assert evaluate(down, [going], WATCH, T0 + timedelta(minutes=3))[0].state == READY
    failed = run("a", "a1", "failed", task_states={"load": "failed"})
    wait = evaluate(down, [failed], WATCH, T0 + timedelta(minutes=10))[0]
    assert wait.state == WAITING and "task load failed" in wait.missing[0].detail


def test_align_latest_waits_in_each_own_slot_for_a_recent_success() -> None:
    down = pipeline(
        [{"pipeline": "a", "align": "latest", "within": "2h", "timeout": "1h"}],
        schedule={"kind": "cron", "cron": "0 3 * * *"},
    )
    slot = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    stale = run("a", "a0", "success", ended_at=slot - timedelta(hours=3))
    wait = evaluate(down, [stale], WATCH, slot + timedelta(minutes=5))[0]
    assert (wait.slot, wait.state, wait.until) == ("2026-12-03T03:00:00+00:00", WAITING, slot + timedelta(hours=1))
    fresh = run("a", "a1", "success", ended_at=slot - timedelta(minutes=30))
    assert evaluate(down, [stale, fresh], WATCH, slot + timedelta(minutes=5))[0].state == READY
    assert evaluate(down, [stale], WATCH, slot + timedelta(hours=1))[0].state == TIMED_OUT
    # the next check is the next schedule tick when nothing waits
    assert next_check([], down, slot + timedelta(minutes=5)) == slot + timedelta(days=1)


def test_a_run_without_logical_date_is_its_own_slot_for_a_single_dependency_only() -> None:
    manual = UpstreamRun(
        "airflow", "a", "manual__1", "success", None, started_at=T0, ended_at=T0 + timedelta(minutes=1)
    )
    assert [w.slot for w in evaluate(pipeline(["a"]), [manual], WATCH, T0 + timedelta(minutes=2))] == [
        "run:airflow:manual__1"
    ]
    assert evaluate(pipeline(["a", "b"]), [manual], WATCH, T0 + timedelta(minutes=2)) == []


def test_trigger_keys_are_deterministic_readable_and_distinct_per_backend_and_slot() -> None:
    slot = "2026-12-03T01:00:00+00:00"
    key = trigger_key("down", "prefect", slot)
    assert key == trigger_key("down", "prefect", slot)
    assert key.startswith("meta-dep-20261203T010000Z-")
    assert (
        len({key, trigger_key("down", "airflow", slot), trigger_key("down", "prefect", "2026-12-04T01:00:00+00:00")})
        == 3
    )
    import re

    assert re.fullmatch(r"[A-Za-z0-9_.~:+-]+", key)  # Airflow's run_id alphabet


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"depends_on": ["down"]}, "cannot depend on itself"),
        (
            {
                "depends_on": ["a", {"pipeline": "b", "align": "latest"}],
                "schedule": {"kind": "cron", "cron": "0 1 * * *"},
            },
            "mixes align",
        ),
        ({"depends_on": ["a"], "schedule": {"kind": "cron", "cron": "0 1 * * *"}}, "would run it a second time"),
        ({"depends_on": [{"pipeline": "a", "align": "latest"}]}, "has no schedule"),
    ],
)
def test_depends_on_that_cannot_mean_anything_is_refused(spec: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Pipeline.model_validate({"id": "down", "tasks": [{"id": "t", "action": {"kind": "noop"}}], **spec})


def test_within_needs_align_latest_and_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="'within' applies to align: latest only"):
        pipeline([{"pipeline": "a", "within": "1h"}])
    with pytest.raises(ValueError, match="timeout must be positive"):
        pipeline([{"pipeline": "a", "timeout": "0s"}])


def test_yaml_depends_on_round_trips_and_a_cycle_is_named_with_file_and_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from meta.authoring.load import load_paths
    from meta.authoring.yaml_writer import pipeline_to_yaml

    text = (
        "pipeline: down\ndepends_on:\n  - up\n  - {pipeline: other, task: load, backend: prefect, timeout: 2h}\n"
        "tasks: {t: {shell: 'true'}}\n"
    )
    [loaded] = loads(text)
    assert [d.label for d in loaded.depends_on] == ["up", "other.load on prefect"]
    assert loads(pipeline_to_yaml(loaded)) == [loaded]
    (tmp_path / "a.yaml").write_text("pipeline: a\ndepends_on: [c]\ntasks: {t: {shell: 'true'}}\n")
    (tmp_path / "b.yaml").write_text("pipeline: b\ndepends_on: [a]\ntasks: {t: {shell: 'true'}}\n")
    (tmp_path / "c.yaml").write_text("pipeline: c\ndepends_on: [b]\ntasks: {t: {shell: 'true'}}\n")
    with pytest.raises(ValidationFailed) as caught:
        load_paths([tmp_path])
    [problem] = caught.value.problems
    assert "depends_on forms a cycle: a -> b -> c -> a" in problem.message
    assert (problem.file, problem.line) == (str(tmp_path / "a.yaml"), 1)
