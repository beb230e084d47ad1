"""Backfill planning (meta.service.backfills.plan): dates inclusive at both ends in the pipeline's timezone (DST
included), interval schedules, reprocess decisions like Airflow's, deterministic keys, downstreams in order; and a
local-backend backfill end to end through the CLI, resumed without starting anything twice."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.service.backfills import plan
from meta.spec.errors import MetaError
from meta.spec.model import Pipeline


def pipeline(pipeline_id: str = "p", **extra: object) -> Pipeline:
    return Pipeline.model_validate({"id": pipeline_id, "tasks": [{"id": "t", "action": {"kind": "noop"}}], **extra})


def test_dates_are_inclusive_in_the_pipelines_timezone_across_a_dst_change() -> None:
    zurich = pipeline(schedule={"kind": "cron", "cron": "30 2 * * *"}, timezone="Europe/Zurich")
    start = plan.aware(datetime(2026, 3, 28), zurich.timezone)
    end = plan.aware(datetime(2026, 3, 30, 2, 30), zurich.timezone)  # the last slot itself is included
    got = plan.dates(zurich, start, end)
    assert [d.isoformat() for d in got] == [
        "2026-03-28T01:30:00+00:00",  # 02:30 CET
        "2026-03-29T01:00:00+00:00",  # 02:30 does not exist that night: 03:00 CEST, as croniter (and Airflow) read it
        "2026-03-30T00:30:00+00:00",  # 02:30 CEST
    ]


def test_interval_schedules_anchor_at_their_start_date() -> None:
    every = pipeline(schedule={"kind": "interval", "every": "6h"}, start_date="2026-12-01T03:00:00")
    got = plan.dates(every, datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 1, 23, tzinfo=UTC))
    assert [d.hour for d in got] == [3, 9, 15, 21]


def test_what_cannot_be_backfilled_says_why() -> None:
    with pytest.raises(MetaError, match="has no schedule, so it has no dates to backfill"):
        plan.dates(pipeline(), datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    down = pipeline("down", depends_on=["up"])
    with pytest.raises(MetaError, match="backfill them with --with-downstream"):
        plan.dates(down, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    daily = pipeline(schedule={"kind": "cron", "cron": "0 1 * * *"})
    with pytest.raises(MetaError, match="is before --from"):
        plan.dates(daily, datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize(
    ("latest", "reprocess", "runs"),
    [
        (None, "none", True),
        ("success", "none", False),
        ("failed", "none", False),
        ("failed", "failed", True),
        ("success", "failed", False),
        ("success", "completed", True),
        ("running", "completed", True),
    ],
)
def test_reprocess_follows_airflow(latest: str | None, reprocess: plan.Reprocess, runs: bool) -> None:
    assert plan.to_run(datetime(2026, 1, 1, tzinfo=UTC), latest, reprocess) is runs


def test_keys_are_deterministic_per_request_and_date_and_fit_airflows_run_ids() -> None:
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, tzinfo=UTC)
    one = plan.backfill_id("p", ["af", "pf"], start, end, "none", True)
    assert one == plan.backfill_id("p", ["pf", "af"], start, end, "none", True)
    assert one != plan.backfill_id("p", ["af", "pf"], start, end, "failed", True)
    key = plan.run_key(one, "pf", "p", datetime(2026, 1, 2, 1, tzinfo=UTC))
    assert key == plan.run_key(one, "pf", "p", datetime(2026, 1, 2, 1, tzinfo=UTC))
    assert key.startswith("meta-bf-20260102T010000Z-") and re.fullmatch(r"[A-Za-z0-9_.~:+-]+", key)
    assert key != plan.run_key(one, "af", "p", datetime(2026, 1, 2, 1, tzinfo=UTC))


def test_downstreams_are_found_transitively_in_dependency_order() -> None:
    found = {
        p.id: p
        for p in (
            pipeline("up", schedule={"kind": "cron", "cron": "0 1 * * *"}),
            pipeline("c", depends_on=["b"]),
            pipeline("b", depends_on=["up"]),
            pipeline(
                "late",
                schedule={"kind": "cron", "cron": "0 9 * * *"},
                depends_on=[{"pipeline": "up", "align": "latest"}],
            ),
            pipeline("other"),
        )
    }
    assert [(p.id, ups) for p, ups in plan.downstreams("up", found)] == [("b", ["up"]), ("c", ["b"])]


def test_a_local_backfill_with_downstream_runs_each_date_once_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "up.yaml").write_text("pipeline: up\nschedule: '0 1 * * *'\ntasks: {t: {shell: 'true'}}\n")
    (tmp_path / "dags" / "down.yaml").write_text("pipeline: down\ndepends_on: [up]\ntasks: {t: {shell: 'true'}}\n")
    (tmp_path / "meta.yaml").write_text(
        "name: bf\nspecs: [dags]\nbackends: {loc: {kind: local}}\nplacements: [{backend: loc, pipelines: [up, down]}]\n"
        f"control_plane: {{database: 'sqlite:///{tmp_path / 'cp.db'}'}}\n"
    )
    monkeypatch.setenv("META_HOME", str(tmp_path / "home"))
    args = [
        "backfill",
        "up",
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
        "--with-downstream",
        "--workspace",
        str(tmp_path),
    ]
    runner = CliRunner()
    dry = runner.invoke(cli, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "4 dates, nothing started" in dry.output
    assert "2026-11-02T01:00+00:00  down on loc: run, after up succeeds" in dry.output
    done = runner.invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert "4/4 ended: 4 success" in done.output
    lines = done.output.splitlines()
    up_done = max(i for i, line in enumerate(lines) if " up on loc: success" in line)
    down_started = min(i for i, line in enumerate(lines) if " down on loc: started" in line)
    assert down_started > lines.index(next(line for line in lines if " up on loc: success" in line))
    assert up_done >= 0
    runs = runner.invoke(cli, ["runs", "--limit", "50", "--workspace", str(tmp_path)])
    assert runs.output.count("meta-bf-") == 4
    again = runner.invoke(cli, args)
    assert again.exit_code == 0 and "resumed" in again.output
    assert runner.invoke(cli, ["runs", "--limit", "50", "--workspace", str(tmp_path)]).output.count("meta-bf-") == 4


def test_reprocess_failed_re_runs_a_failing_date_each_time_it_is_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "bad.yaml").write_text("pipeline: bad\nschedule: '0 1 * * *'\ntasks: {t: {shell: 'exit 3'}}\n")
    (tmp_path / "meta.yaml").write_text(
        "name: bf\nspecs: [dags]\nbackends: {loc: {kind: local}}\nplacements: [{backend: loc, pipelines: [bad]}]\n"
        f"control_plane: {{database: 'sqlite:///{tmp_path / 'cp.db'}'}}\n"
    )
    monkeypatch.setenv("META_HOME", str(tmp_path / "home"))
    base = ["backfill", "bad", "--from", "2026-11-05", "--to", "2026-11-05", "--workspace", str(tmp_path)]
    runner = CliRunner()

    def runs() -> list[str]:
        found = runner.invoke(cli, ["runs", "--limit", "50", "--workspace", str(tmp_path)]).output
        return sorted(re.findall(r"meta-bf-\S+", found))

    first = runner.invoke(cli, base)
    assert first.exit_code == 1 and "1 of 1 dates did not succeed" in first.output
    assert runner.invoke(cli, base).exit_code == 1 and len(runs()) == 1  # the same request: nothing new
    for attempt in (1, 2):
        again = runner.invoke(cli, [*base, "--reprocess", "failed"])
        assert again.exit_code == 1, again.output
        assert len(runs()) == 1 + attempt
    # the --reprocess failed request's own first run, then its re-run of it under the next attempt's key
    assert [r.endswith("-r1") for r in runs()].count(True) == 1
