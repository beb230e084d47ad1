"""The Python DSL builds the same pipelines as YAML and reports problems at the user's call site."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from meta.authoring.load import load_file, load_file_with_sources, loads, pipeline_to_yaml
from meta.dsl import branch, noop, pipeline, python_task, shell, sql
from meta.plugins.ops import OpType
from meta.spec.errors import ValidationFailed
from tests.strategies import registered_ops

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"
HERE = __file__


def _site(marker: str, call: str) -> str:
    """'file:line:col' of the call ``call(`` on the line marked ``marker``, as the DSL reports it."""
    line = _line_of(marker)
    return f"{HERE}:{line}:{Path(HERE).read_text().splitlines()[line - 1].index(call + '(') + 1}"


def _line_of(marker: str) -> int:
    """Line number of the first source line of this file containing ``marker``."""
    lines = Path(HERE).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if marker in line and "_line_of" not in line)


def test_dsl_equals_yaml() -> None:
    with pipeline("sales_ch", schedule="@daily", defaults={"retries": 2}, params={"country": "CH"}) as p:
        a = shell("extract", "python -m jobs.extract --date {{ ds }}")
        b = python_task("score", "pkg.mod:fn", kwargs={"x": 1}, retry_delay=timedelta(minutes=5))
        c = sql("load", "warehouse", "insert into t select 1")
        d = branch("pick", "pkg.mod:choose")
        e = noop("done", trigger_rule="none_failed")
        a >> b >> c >> d >> e
    [expected] = loads(
        """
pipeline: sales_ch
schedule: "@daily"
defaults: {retries: 2}
params: {country: CH}
tasks:
  extract: {shell: "python -m jobs.extract --date {{ ds }}"}
  score: {python: "pkg.mod:fn", kwargs: {x: 1}, retry_delay: 5m, upstream: [extract]}
  load: {sql: {conn: warehouse, statement: "insert into t select 1"}, upstream: [score]}
  pick: {branch: "pkg.mod:choose", upstream: [load]}
  done: {noop: true, trigger_rule: none_failed, upstream: [pick]}
"""
    )
    assert p.pipeline == expected


def test_operators_and_lists() -> None:
    with pipeline("fan") as p:
        start, left, right, join = noop("start"), noop("left"), noop("right"), noop("join")
        start >> [left, right] >> join
        extra = noop("extra")
        join << extra
        [extra] << noop("first")
    assert p.pipeline is not None
    ups = {t.id: t.upstream for t in p.pipeline.tasks}
    assert ups == {
        "start": (),
        "left": ("start",),
        "right": ("start",),
        "join": ("left", "right", "extra"),
        "extra": ("first",),
        "first": (),
    }


def test_function_objects_become_import_paths() -> None:
    with pipeline("fn") as p:
        python_task("join", json.dumps)
        python_task("dump", pipeline_to_yaml)
    assert p.pipeline is not None
    assert [t.action.callable for t in p.pipeline.tasks] == ["json:dumps", "meta.authoring.load:pipeline_to_yaml"]


def test_local_functions_are_refused() -> None:
    def local() -> None:
        return None

    with pytest.raises(ValidationFailed, match="is not importable by the runner"), pipeline("fn"):
        python_task("x", local)


def test_problems_point_at_the_call() -> None:
    with pytest.raises(ValidationFailed) as info:
        with pipeline("bad", schedule="@dayly"):  # MARK-pipeline
            x = shell("x", "echo")
            y = shell("y", "echo", upstream=["z"], trigger_rule="nope")  # MARK-y
            x >> y
            shell("x", "again")  # MARK-dup
    lines = [str(p) for p in info.value.problems]
    assert lines == [
        f"{_site('# MARK-pipeline', 'pipeline')}: pipeline 'bad': schedule: unknown cron preset '@dayly'; expected one"
        " of @hourly, @daily, @midnight, @weekly, @monthly, @quarterly, @yearly, @annually",
        f"{_site('# MARK-y', 'shell')}: pipeline 'bad', task 'y': trigger_rule: expected one of 'all_success', "
        "'all_failed', 'all_done', 'all_done_min_one_success', 'all_skipped', 'one_success', 'one_failed', "
        "'one_done', 'none_failed', 'none_failed_min_one_success', 'none_skipped' or 'always'; received 'nope'",
        f"{_site('# MARK-y', 'shell')}: pipeline 'bad', task 'y': upstream 'z' is not a task of this pipeline",
        f"{_site('# MARK-dup', 'shell')}: pipeline 'bad', task 'x': duplicate task id 'x': first defined at "
        f"{HERE}:{_line_of('# MARK-dup') - 3}; task ids must be unique",
    ]


def test_unknown_keyword_gets_did_you_mean() -> None:
    with pytest.raises(ValidationFailed, match="unknown key 'retires' in task 'a'; did you mean 'retries'"):
        with pipeline("p"):
            shell("a", "echo", retires=3)


def test_task_outside_pipeline() -> None:
    with pytest.raises(ValidationFailed, match=r"test_dsl.py:\d+:9: shell\(\) was called outside a 'with pipeline"):
        shell("a", "echo")


def test_literal_credential_in_dsl_is_not_shown() -> None:
    with pytest.raises(ValidationFailed) as info, pipeline("p"):
        shell("a", "echo", env={"DB_PASSWORD": "pw-13579"})
    assert "env.DB_PASSWORD holds a literal credential" in str(info.value)
    assert "pw-13579" not in str(info.value)


def test_spec_file_collects_blocks_and_module_list() -> None:
    alert = OpType(name="fixture_alert", run=lambda ctx, **kw: None)
    with registered_ops(alert):
        loaded = load_file_with_sources(SPECS / "dsl_spec.py")
    pipelines = loaded.pipelines
    assert [p.id for p in pipelines] == ["dsl_sales_ch", "dsl_sales_de", "dsl_fan"]
    ch = pipelines[0]
    assert ch.task("extract").action.command == "python -m jobs.extract --country CH --date {{ ds }}"
    assert ch.task("score").retry_delay == timedelta(minutes=1) and ch.task("load").upstream == ("score",)
    fan = pipelines[2]
    assert fan.task("join").upstream == ("left", "right", "pick")
    assert fan.task("notify").action.with_ == {"channel": "slack:data-team"}
    assert loaded.source_of("dsl_fan").file == str(SPECS / "dsl_spec.py")


def test_spec_file_problems_from_all_blocks(tmp_path: Path) -> None:
    spec = tmp_path / "spec.py"
    spec.write_text(
        "from meta.dsl import pipeline, shell, op\n"
        "with pipeline('one'):\n"
        "    shell('a', 'echo', upstream=['b'])\n"
        "with pipeline('two'):\n"
        "    op('a', 'no_such_op')\n"
    )
    with pytest.raises(ValidationFailed) as info, registered_ops():
        load_file(spec)
    lines = [str(p) for p in info.value.problems]
    assert lines[0] == f"{spec}:3:5: pipeline 'one', task 'a': upstream 'b' is not a task of this pipeline"
    assert lines[1].startswith(f"{spec}:5:5: pipeline 'two', task 'a': unknown op type 'no_such_op'")


def test_spec_file_import_errors(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from meta.dsl import pipeline\n\nx = 1 +\n")
    with pytest.raises(ValidationFailed, match=r"broken\.py:3:\d+: Python syntax error"):
        load_file(broken)
    failing = tmp_path / "failing.py"
    failing.write_text("from meta.dsl import pipeline\n\nraise RuntimeError('boom')\n")
    with pytest.raises(ValidationFailed, match=r"failing\.py:3: importing the file failed: RuntimeError: boom"):
        load_file(failing)
    empty = tmp_path / "empty.py"
    empty.write_text("import meta.dsl\n")
    with pytest.raises(ValidationFailed, match="defines no pipeline"):
        load_file(empty)


def test_spec_file_is_isolated(tmp_path: Path) -> None:
    import sys

    spec = tmp_path / "isolated.py"
    spec.write_text("from meta.dsl import pipeline, noop\nwith pipeline('iso'):\n    noop('a')\n")
    before = set(sys.modules)
    load_file(spec)
    load_file(spec)  # loading twice re-runs the file and does not leak modules or sys.path entries
    assert not {m for m in set(sys.modules) - before if m.startswith("meta_spec_")}
    assert str(tmp_path) not in sys.path


def test_spec_file_duplicate_pipeline_ids(tmp_path: Path) -> None:
    spec = tmp_path / "dup.py"
    spec.write_text(
        "from meta.dsl import pipeline, noop\nfor _ in range(2):\n    with pipeline('same'):\n        noop('a')\n"
    )
    with pytest.raises(ValidationFailed, match=r"dup\.py: duplicate pipeline id 'same'"):
        load_file(spec)


def test_tasks_of_different_pipelines_cannot_be_connected() -> None:
    with pipeline("one"):
        a = noop("a")
    with pytest.raises(ValidationFailed, match="task 'a' of pipeline 'one' cannot be upstream of task 'b' of pipeline"):
        with pipeline("two"):
            b = noop("b")
            a >> b


def test_reserved_keywords() -> None:
    with pytest.raises(
        ValidationFailed, match=r"test_dsl\.py:\d+:9: pipeline 'p': pipeline\(\) takes no 'tasks' keyword"
    ):
        pipeline("p", tasks={})
