"""Loading the YAML authoring form: every accepted form, YAML 1.2 scalars, files, directories, sources."""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from pathlib import Path

import pytest

from meta.authoring.load import (
    discover,
    load_file,
    load_file_with_sources,
    load_paths,
    load_paths_with_sources,
    loads,
    loads_with_sources,
    uses_dsl,
)
from meta.authoring.yamlpos import Builder, compose_all
from meta.spec.errors import ValidationFailed
from meta.spec.states import TriggerRule

SPECS = Path(__file__).parents[1] / "fixtures" / "specs"


def test_all_forms() -> None:
    [p] = load_file(SPECS / "all_forms.yaml")
    assert (p.id, p.owner, p.team, p.tags) == ("marketing_roi", "growth", "growth", ("marketing", "daily"))
    assert p.schedule is not None and p.schedule.kind == "cron" and p.schedule.cron == "0 1 * * *"
    assert (p.timezone, p.start_date, p.catchup, p.max_active_runs) == ("Europe/Zurich", datetime(2024, 1, 1), False, 1)
    assert {n: (q.type, q.default, q.required) for n, q in p.params.items()} == {
        "country": ("string", "CH", False),
        "limit": ("integer", 100, False),
        "ratio": ("number", 0.5, False),
        "dry_run": ("string", "no", False),
        "days": ("array", [1, 2], False),
    }
    assert (p.defaults.retries, p.defaults.retry_delay, p.defaults.timeout) == (
        2,
        timedelta(minutes=5),
        timedelta(minutes=30),
    )
    assert p.sla is not None and (p.sla.finish_by, p.sla.max_duration) == (time(10, 30), timedelta(hours=2))
    assert (p.alerts.on_failure, p.alerts.on_sla_miss) == (("slack:data-team",), ("email:oncall",))

    t = {task.id: task for task in p.tasks}
    assert t["extract_sales"].action.model_dump() == {
        "kind": "shell",
        "command": "python -m jobs.extract --date {{ ds }}",
        "env": {},
        "cwd": None,
    }
    assert t["extract_ads"].action.model_dump() == {
        "kind": "shell",
        "command": "python -m jobs.ads",
        "env": {"REGION": "eu"},
        "cwd": "/tmp",
    }
    assert t["score"].action.model_dump() == {"kind": "python", "callable": "pkg.mod:fn", "kwargs": {"x": 1}}
    assert t["score"].upstream == ("extract_sales",)
    assert t["score2"].action.model_dump() == {"kind": "python", "callable": "pkg.mod:fn2", "kwargs": {"y": [1, 2]}}
    load = t["load"]
    assert load.action.model_dump() == {
        "kind": "sql",
        "conn": "warehouse",
        "statement": "insert into roi\nselect 1\n",
        "parameters": {},
    }
    assert (load.upstream, load.retries, load.retry_backoff, load.max_retry_delay, load.pool, load.max_active) == (
        ("score", "score2"),
        3,
        2.0,
        timedelta(hours=1),
        "warehouse",
        1,
    )
    assert (load.inputs, load.outputs) == (
        ("postgres://warehouse/public.sales",),
        ("postgres://warehouse/public.roi",),
    )
    assert (load.params, load.description) == ({"batch": 10}, "load the scores")
    assert t["pick"].action.model_dump() == {"kind": "branch", "callable": "pkg.mod:choose", "kwargs": {"threshold": 3}}
    assert t["wait"].trigger_rule is TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    assert {t[k].kind for k in ("wait", "wait2", "wait3")} == {"noop"}
    assert t["legacy"].action.model_dump() == {
        "kind": "airflow_operator",
        "operator": "airflow.providers.x.Y",
        "arguments": {"a": 1},
    }
    # Effective settings combine the task, the pipeline defaults and Airflow's defaults.
    assert p.settings_for(t["extract_sales"]).retries == 2
    assert p.settings_for(load).retries == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10:30", "10:30"),  # YAML 1.1 would read 630
        ("1:2:3", "1:2:3"),
        ("yes", "yes"),
        ("no", "no"),
        ("on", "on"),
        ("off", "off"),
        ("y", "y"),
        ("true", True),
        ("False", False),
        ("TRUE", True),
        ("null", None),
        ("~", None),
        ("", None),
        ("42", 42),
        ("-7", -7),
        ("007", 7),
        ("0o17", 15),
        ("0x1F", 31),
        ("1_000", "1_000"),  # 1.1 reads 1000
        ("1.5", 1.5),
        ("1e3", 1000.0),  # 1.1 reads the string "1e3"
        (".5", 0.5),
        ("2024-01-01", "2024-01-01"),  # 1.1 reads a date
        ("'10:30'", "10:30"),
        ('"true"', "true"),
        ("!!str 42", "42"),
        ("!!int '42'", 42),
        ("!!float '1'", 1.0),
    ],
)
def test_yaml_12_core_scalars(text: str, expected: object) -> None:
    docs, problems = compose_all(f"v: {text}\n", "f.yaml")
    value = Builder("f.yaml").value(docs[0].node)["v"]
    assert problems == []
    assert value == expected and type(value) is type(expected)


def test_special_floats() -> None:
    docs, _ = compose_all("a: .inf\nb: -.Inf\nc: .NaN\n", "f.yaml")
    value = Builder("f.yaml").value(docs[0].node)
    assert value["a"] == math.inf and value["b"] == -math.inf and math.isnan(value["c"])


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        ('"@daily"', {"kind": "cron", "cron": "@daily"}),
        ('"*/5 * * * 1-5"', {"kind": "cron", "cron": "*/5 * * * 1-5"}),
        ("every 15m", {"kind": "interval", "every": timedelta(minutes=15)}),
        ("every 1h30m", {"kind": "interval", "every": timedelta(minutes=90)}),
        ("{cron: '0 3 * * *'}", {"kind": "cron", "cron": "0 3 * * *"}),
        ("{every: 2h}", {"kind": "interval", "every": timedelta(hours=2)}),
        ("{datasets: [s3://b/x]}", {"kind": "datasets", "datasets": ("s3://b/x",), "mode": "all"}),
        (
            "{datasets: [s3://b/x, s3://b/y], mode: any}",
            {"kind": "datasets", "datasets": ("s3://b/x", "s3://b/y"), "mode": "any"},
        ),
        ("null", None),
        ("none", None),
        ("", None),
    ],
)
def test_schedule_forms(schedule: str, expected: dict | None) -> None:
    [p] = loads(f"pipeline: p\nschedule: {schedule}\ntasks: {{a: {{noop: true}}}}\n")
    assert (p.schedule.model_dump() if p.schedule else None) == expected


def test_required_param_and_full_form() -> None:
    [p] = loads(
        "pipeline: p\nparams:\n  day: {type: string, format: date, description: the day}\n"
        "  n: {type: [integer, 'null'], default: null, minimum: 1}\ntasks: {a: {noop: true}}\n"
    )
    assert p.params["day"].required and p.params["day"].format == "date"
    assert p.params["n"].type == ("integer", "null") and p.params["n"].default is None


def test_several_pipelines_per_file() -> None:
    loaded = load_file_with_sources(SPECS / "multi.yaml")
    pipelines = loaded.pipelines
    assert [p.id for p in pipelines] == ["first", "second", "third"]
    assert pipelines[1].schedule.model_dump() == {"kind": "interval", "every": timedelta(minutes=15)}
    assert pipelines[2].schedule.mode == "any"
    assert loaded.source_of("third") == (str(SPECS / "multi.yaml"), 8)
    assert loaded.source_of("second") == (str(SPECS / "multi.yaml"), 4)


def test_merge_keys_share_settings() -> None:
    [p] = load_file(SPECS / "anchors.yaml")
    a, b = p.tasks
    assert (a.retries, a.timeout, a.action.command) == (4, timedelta(minutes=10), "echo a")
    assert (b.retries, b.timeout, b.action.command, b.upstream) == (4, timedelta(minutes=10), "echo b", ("a",))


def test_error_inside_merged_mapping_points_at_the_anchor() -> None:
    text = "pipeline: p\ntasks:\n  a: &b {shell: x, retries: many}\n  c: {<<: *b, shell: y}\n"
    with pytest.raises(ValidationFailed) as info:
        loads(text, "f.yaml")
    lines = [str(p) for p in info.value.problems]
    assert lines[0].startswith("f.yaml:3:29: pipeline 'p', task 'a': retries: expected a valid integer")
    assert lines[1].startswith("f.yaml:3:29: pipeline 'p', task 'c': retries: expected a valid integer")


def test_source_of_and_upstream_string() -> None:
    loaded = loads_with_sources(
        "\n\npipeline: somewhere\ntasks:\n  a: {noop: true}\n  b: {noop: true, upstream: a}\n", "x.yaml"
    )
    [p] = loaded.pipelines
    assert p.task("b").upstream == ("a",)
    assert loaded.source_of("somewhere") == ("x.yaml", 3)
    assert loaded.source_of("never-loaded") is None
    assert loads_with_sources("pipeline: elsewhere\ntasks: {a: {noop: true}}\n", "y.yaml").sources == {
        "elsewhere": ("y.yaml", 1)
    }  # each load says only what it loaded: nothing is remembered between loads


def test_numeric_ids_are_text() -> None:
    [p] = loads("pipeline: 2024\ntasks:\n  1: {noop: true}\n  2: {noop: true, upstream: [1]}\n")
    assert p.id == "2024" and p.task_ids == ("1", "2") and p.task("2").upstream == ("1",)


def test_discover_and_load_paths() -> None:
    tree = SPECS / "tree"
    found = [p.relative_to(tree).as_posix() for p in discover([tree])]
    assert found == ["nested/spec.py", "nested/two.yml", "one.yaml"]
    assert sorted(p.id for p in load_paths([tree])) == ["tree_one", "tree_three", "tree_two"]


@pytest.mark.parametrize(
    ("source", "uses"),
    [
        ("# written with meta.dsl, one day\nraise SystemExit('executed')\n", False),  # a comment
        ("NOTE = 'see meta.dsl for pipelines'\nraise SystemExit('executed')\n", False),  # a string
        ("import meta\nimport meta.spec\nfrom meta import settings\n", False),  # meta, but not the DSL
        ("from meta import dsl\n", True),
        ("import meta.dsl as d\n", True),
        ("from meta.dsl import pipeline, shell\n", True),
        ("import meta.authoring.dsl\n", True),
        ("from meta.authoring import dsl\n", True),
        ("def build():\n    from meta.dsl import pipeline\n", True),  # nested imports count too
        ("from .meta.dsl import pipeline\n", False),  # a relative import names another package
        ("from meta.dsl import (\n", True),  # does not parse (so cannot run): shown as a syntax error
    ],
)
def test_uses_dsl_is_decided_from_the_syntax_tree(tmp_path: Path, source: str, uses: bool) -> None:
    path = tmp_path / "spec.py"
    path.write_text(source)
    assert uses_dsl(path) is uses


def test_directory_walk_executes_only_dsl_files(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    (tmp_path / "helper.py").write_text(
        f"# helpers for the meta.dsl pipelines\nopen({str(marker)!r}, 'w').write('helper ran')\n"
    )
    (tmp_path / "pipe.py").write_text("from meta import dsl\nwith dsl.pipeline('walked'):\n    dsl.noop('a')\n")
    (tmp_path / "broken.py").write_text("from meta.dsl import (\n")
    assert [p.name for p in discover([tmp_path])] == ["broken.py", "pipe.py"]
    with pytest.raises(ValidationFailed) as info:
        load_paths([tmp_path])
    assert [(Path(p.file or "").name, p.message.split(":")[0]) for p in info.value.problems] == [
        ("broken.py", "Python syntax error")
    ]
    (tmp_path / "broken.py").unlink()
    loaded = load_paths_with_sources([tmp_path])
    assert [p.id for p in loaded.pipelines] == ["walked"]
    assert loaded.source_of("walked") == (str((tmp_path / "pipe.py").resolve()), 2)
    assert not marker.exists()  # helper.py was never executed
    [explicit] = discover([tmp_path / "helper.py"])  # a file the user names is a pipeline file: it is executed
    assert explicit.name == "helper.py"


def test_load_file_rejects_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("x = 1\n")
    with pytest.raises(
        ValidationFailed, match=r"p\.toml: unsupported file type '\.toml'; expected \.yaml, \.yml, \.json or \.py"
    ):
        load_file(path)


def test_byte_order_mark_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffpipeline: bom\ntasks: {a: {noop: true}}\n".encode())
    assert [p.id for p in load_file(path)] == ["bom"]
    with pytest.raises(ValidationFailed, match="is a directory"):
        load_file(tmp_path)


def test_json_spec_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"pipeline": "js", "schedule": "@daily", "tasks": {"a": {"shell": "echo"}, "b": {"noop": true}}}')
    [p] = load_file(path)
    assert (p.id, p.task_ids) == ("js", ("a", "b"))
