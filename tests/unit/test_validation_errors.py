"""Every bad input is reported with file:line:col, pipeline, task, what was received and what is expected."""

from __future__ import annotations

import pytest

from meta.authoring.load import load_paths, loads
from meta.spec.errors import ValidationFailed

H = "pipeline: p\n"
RULES = "'all_success', 'all_failed', 'all_done', 'all_done_min_one_success', 'all_skipped', 'one_success'"

CASES = [
    (
        "bad cron",
        H + 'schedule: "61 * * * *"\ntasks: {a: {noop: true}}\n',
        ["f.yaml:2:11: pipeline 'p': schedule: invalid cron expression '61 * * * *'; expected 5 fields like"],
    ),
    (
        "bad preset",
        H + 'schedule: "@dayly"\ntasks: {a: {noop: true}}\n',
        ["f.yaml:2:11: pipeline 'p': schedule: unknown cron preset '@dayly'; expected one of @hourly, @daily"],
    ),
    (
        "bad interval",
        H + "schedule: every soon\ntasks: {a: {noop: true}}\n",
        ["f.yaml:2:11: pipeline 'p': schedule: expected a duration like '30s', '5m'", "got 'soon'"],
    ),
    (
        "bad task duration",
        H + "tasks:\n  a: {shell: x, retry_delay: 5 minutes}\n",
        ["f.yaml:3:30: pipeline 'p', task 'a': retry_delay: expected a duration like '30s'", "got '5 minutes'"],
    ),
    (
        "bad default duration",
        H + "defaults: {timeout: forever}\ntasks: {a: {noop: true}}\n",
        ["f.yaml:2:21: pipeline 'p': defaults.timeout: expected a duration", "got 'forever'"],
    ),
    (
        "unknown trigger rule lists the valid ones",
        H + "tasks:\n  a: {shell: x}\n  b: {shell: x, upstream: a, trigger_rule: one_faild}\n",
        [f"f.yaml:4:44: pipeline 'p', task 'b': trigger_rule: expected one of {RULES}", "received 'one_faild'"],
    ),
    (
        "unknown pipeline key",
        H + 'schedul: "@daily"\ntasks: {a: {noop: true}}\n',
        ["f.yaml:2:1: pipeline 'p': unknown key 'schedul' in a pipeline; did you mean 'schedule'?"],
    ),
    (
        "unknown task key",
        H + "tasks:\n  a: {shell: x}\n  b: {shell: x, upstrem: [a]}\n",
        ["f.yaml:4:17: pipeline 'p', task 'b': unknown key 'upstrem' in task 'b'; did you mean 'upstream'?"],
    ),
    (
        "unknown key inside an action",
        H + "tasks:\n  a: {shell: {command: x, evn: {}}}\n",
        ["f.yaml:3:27: pipeline 'p', task 'a': unknown key 'evn' in shell; did you mean 'env'?"],
    ),
    (
        "missing action",
        H + "tasks:\n  a: {retries: 1}\n",
        ["f.yaml:3:3: pipeline 'p', task 'a': task has no action; expected exactly one of shell:, python:, sql:"],
    ),
    (
        "two actions",
        H + "tasks:\n  a: {shell: x, sql: {conn: c, statement: s}}\n",
        ["f.yaml:3:17: pipeline 'p', task 'a': task has 2 actions (shell, sql); expected exactly one of"],
    ),
    (
        "unknown upstream",
        H + "tasks:\n  extract: {shell: x}\n  load: {shell: x, upstream: [extrct]}\n",
        ["f.yaml:4:31: pipeline 'p', task 'load': upstream 'extrct' is not a task of this pipeline; did you mean"],
    ),
    (
        "cycle shown as a path",
        H + "tasks:\n  a: {shell: x, upstream: [c]}\n  b: {shell: x, upstream: [a]}\n  c: {shell: x, upstream: [b]}\n",
        ["f.yaml:3:3: pipeline 'p', task 'a': dependency cycle: a -> b -> c -> a"],
    ),
    (
        "self dependency",
        H + "tasks:\n  a: {shell: x, upstream: a}\n",
        ["f.yaml:3:27: pipeline 'p', task 'a': task depends on itself (cycle: a -> a)"],
    ),
    (
        "duplicate task id names both lines",
        H + "tasks:\n  a: {shell: x}\n  b: {shell: y}\n  a: {shell: z}\n",
        ["f.yaml:5:3: duplicate key 'a': first defined at line 3, again at line 5"],
    ),
    (
        "duplicate pipeline id",
        "pipelines:\n  - {pipeline: p, tasks: {a: {noop: true}}}\n  - {pipeline: p, tasks: {a: {noop: true}}}\n",
        ["f.yaml:3: pipeline 'p': duplicate pipeline id 'p': first defined at line 2"],
    ),
    (
        "bad timezone",
        H + "timezone: Mars/Olympus\ntasks: {a: {noop: true}}\n",
        ["f.yaml:2:11: pipeline 'p': timezone: unknown timezone 'Mars/Olympus'; expected an IANA name"],
    ),
    (
        "param default not fitting its type",
        H + "params:\n  n: {type: integer, default: ten}\ntasks: {a: {noop: true}}\n",
        ["f.yaml:3:6: pipeline 'p': params.n: default 'ten' does not fit the param: expected type integer, got str"],
    ),
    (
        "bad task id",
        H + 'tasks:\n  "bad id": {shell: x}\n',
        ["f.yaml:3:13: pipeline 'p', task 'bad id': id: expected an id of letters, digits", "received 'bad id'"],
    ),
    (
        "bad callable",
        H + 'tasks:\n  a: {python: "mod.fn"}\n',
        ["f.yaml:3:15: pipeline 'p', task 'a': python: expected a callable written 'package.module:function'"],
    ),
    (
        "bad channel",
        H + "alerts: {on_failure: [data-team]}\ntasks: {a: {noop: true}}\n",
        ["f.yaml:2:23: pipeline 'p': alerts.on_failure.0: expected a channel written '<kind>:<name>'"],
    ),
    (
        "with on a python task",
        H + 'tasks:\n  a: {python: "m:f", with: {x: 1}}\n',
        ["f.yaml:3:22: pipeline 'p', task 'a': 'with' only applies to op tasks (python and branch tasks take kwargs:)"],
    ),
    (
        "sql as a string",
        H + 'tasks:\n  a: {sql: "select 1"}\n',
        ["f.yaml:3:12: pipeline 'p', task 'a': sql needs a mapping {conn: <connection>, statement: <sql>}"],
    ),
    (
        "tasks as a list",
        H + "tasks:\n  - {shell: x}\n",
        ["f.yaml:3:3: pipeline 'p': tasks must be a mapping of task id -> task"],
    ),
    (
        "no tasks",
        H + "tasks: {}\n",
        ["f.yaml:2:8: pipeline 'p': tasks: a pipeline needs at least one task"],
    ),
    (
        "negative retries",
        H + "tasks:\n  a: {shell: x, retries: -1}\n",
        ["f.yaml:3:26: pipeline 'p', task 'a': retries: expected greater than or equal to 0; received -1"],
    ),
    (
        "wrong container type",
        H + 'sla: "9:00"\ncatchup: maybe\ntasks: {a: {shell: {command: x, env: [A]}}}\n',
        [
            "f.yaml:2:6: pipeline 'p': sla: expected a valid dictionary; received '9:00'",
            "f.yaml:3:10: pipeline 'p': catchup: expected a valid boolean, unable to interpret input; received 'maybe'",
            "f.yaml:4:38: pipeline 'p', task 'a': shell.env: expected a valid dictionary; received ['A']",
        ],
    ),
    (
        "upstream of the wrong type (found by the fuzz test)",
        H + "tasks:\n  a: {shell: x, upstream: -1.5e16}\n",
        ["f.yaml:3:27: pipeline 'p', task 'a': upstream must be a task id or a list of task ids; received -1.5e+16"],
    ),
    ("missing pipeline id", "tasks: {a: {noop: true}}\n", ["f.yaml:1:1: missing 'pipeline:' (the pipeline id)"]),
    ("missing tasks", H, ["f.yaml:1:1: pipeline 'p': missing 'tasks:'"]),
    ("empty sla", H + "sla: {}\ntasks: {a: {noop: true}}\n", ["f.yaml:2:6: pipeline 'p': sla: an SLA needs at least"]),
    (
        "schedule of the wrong type",
        H + "schedule: 5\ntasks: {a: {noop: true}}\n",
        ["f.yaml:2:11: pipeline 'p': expected a cron string like '0 1 * * *'", "received int 5"],
    ),
    (
        "end before start",
        H + "start_date: 2024-01-02\nend_date: 2024-01-01\ntasks: {a: {noop: true}}\n",
        ["f.yaml:3:11: pipeline 'p': end_date 2024-01-01 00:00:00 is before start_date"],
    ),
    (
        "task written as a string",
        H + "tasks:\n  a: echo hi\n",
        ["f.yaml:3:6: pipeline 'p', task 'a': a task must be a mapping with exactly one of shell:"],
    ),
    (
        "names familiar from Airflow get the meta key",
        "dag_id: p\ntasks:\n  a: {bash_command: x, depends_on: [b]}\n  b: {noop: true}\n",
        [
            "f.yaml:1:1: unknown key 'dag_id' in a pipeline; write 'pipeline' instead",
            "f.yaml:3:7: task 'a': unknown key 'bash_command' in task 'a'; write 'shell' instead",
            "f.yaml:3:24: task 'a': unknown key 'depends_on' in task 'a'; write 'upstream' instead",
        ],
    ),
    ("yaml syntax error", H + "tasks:\n  a: {shell: x\n  b: 1\n", ["f.yaml:4:4: YAML syntax error:"]),
    ("empty file", "", ["f.yaml:1:1: the file holds no pipeline (it is empty)"]),
    (
        "recursive alias",
        H + "tasks:\n  a: {noop: true, params: &x {self: *x}}\n",
        ["f.yaml:1:1: a recursive YAML alias (a value containing itself)"],
    ),
    (
        "collection as a key",
        H + "tasks:\n  [a, b]: {noop: true}\n",
        ["f.yaml:3:3: a mapping key must be a plain value (a string or number), not a list or a mapping"],
    ),
    (
        "duplicate keys count only equal types",
        H + "tasks:\n  a: {noop: true, params: {1: x, '1': y, 1: z}}\n",
        ["f.yaml:3:42: duplicate key 1: first defined at line 3, again at line 3"],
    ),
    (
        "unsafe YAML tag",
        H + "tasks:\n  a: !!python/object {x: 1}\n",
        ["f.yaml:3:6: unsupported YAML tag 'tag:yaml.org,2002:python/object'"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_reported_with_position(text: str, expected: list[str]) -> None:
    with pytest.raises(ValidationFailed) as info:
        loads(text, "f.yaml")
    message = str(info.value)
    for part in expected:
        assert part in message


@pytest.mark.parametrize(
    ("text", "secret", "where"),
    [
        (H + "tasks:\n  a: {shell: {command: x, env: {API_TOKEN: s3cr3t-value}}}\n", "s3cr3t-value", "f.yaml:3:44"),
        (H + 'tasks:\n  a: {python: "m:f", kwargs: {password: hunter2}}\n', "hunter2", "f.yaml:3:41"),
        (H + "params: {api_key: {type: integer, default: 987654321}}\ntasks: {a: {noop: true}}\n", "987654321", "2:"),
        (H + "tasks:\n  a: {sql: {conn: c, statement: s, parameters: {db_password: 42424242}}}\n", "42424242", "3:"),
        # A field error elsewhere stops pydantic early: the credential is still found (and still not shown).
        (H + 'schedule: "bad"\ntasks:\n  a: {shell: {command: x, env: {TOKEN: tk-998877}}}\n', "tk-998877", "4:"),
    ],
)
def test_literal_credentials_are_refused_without_showing_them(text: str, secret: str, where: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        loads(text, "f.yaml")
    message = str(info.value)
    assert "holds a literal credential; reference a secret instead" in message
    assert where in message
    assert secret not in message
    assert all(secret not in repr(p) for p in info.value.problems)


def test_secret_references_are_accepted() -> None:
    [p] = loads(H + "tasks:\n  a: {shell: {command: x, env: {API_TOKEN: '${secret:API_TOKEN}'}}}\n")
    assert p.tasks[0].action.env == {"API_TOKEN": "${secret:API_TOKEN}"}


def test_a_file_reports_all_its_problems_at_once() -> None:
    text = (
        "pipeline: p\n"
        'schedule: "61 * * * *"\n'
        "timezon: UTC\n"
        "tasks:\n"
        "  a: {shell: x, upstream: [c], retry_delay: soon}\n"
        "  b: {shell: x, upstream: [a], trigger_rule: nope}\n"
        "  c: {shell: x, upstream: [b]}\n"
        "  d: {upstream: [zz]}\n"
    )
    with pytest.raises(ValidationFailed) as info:
        loads(text, "f.yaml")
    lines = [str(p) for p in info.value.problems]
    expected = [
        "f.yaml:2:11: pipeline 'p': schedule: invalid cron",
        "f.yaml:3:1: pipeline 'p': unknown key 'timezon'",
        "f.yaml:5:45: pipeline 'p', task 'a': retry_delay: expected a duration",
        "f.yaml:6:46: pipeline 'p', task 'b': trigger_rule: expected one of",
        "f.yaml:8:3: pipeline 'p', task 'd': task has no action",
        "f.yaml:8:18: pipeline 'p', task 'd': upstream 'zz' is not a task of this pipeline",
        "f.yaml:5:3: pipeline 'p', task 'a': dependency cycle: a -> b -> c -> a",
    ]
    for part in expected:
        assert any(line.startswith(part) for line in lines), (part, lines)
    assert len(lines) == len(expected)
    assert str(info.value).startswith(f"{len(expected)} problems found:")


def test_problems_carry_structured_fields() -> None:
    with pytest.raises(ValidationFailed) as info:
        loads(H + "tasks:\n  a: {shell: x, trigger_rule: nope}\n", "f.yaml")
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.col, problem.pipeline, problem.task) == ("f.yaml", 3, 31, "p", "a")


def test_load_paths_collects_problems_across_files(tmp_path) -> None:
    (tmp_path / "good.yaml").write_text(H + "tasks: {a: {noop: true}}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "bad.yml").write_text("pipeline: q\ntasks: {a: {shell: x, retries: many}}\n")
    (tmp_path / "sub" / "again.yaml").write_text("\n" + H + "tasks: {b: {noop: true}}\n")
    with pytest.raises(ValidationFailed) as info:
        load_paths([tmp_path, tmp_path / "missing.yaml"])
    message = str(info.value)
    assert f"{tmp_path / 'sub' / 'bad.yml'}:2:32: pipeline 'q', task 'a': retries:" in message
    assert (
        f"{tmp_path / 'sub' / 'again.yaml'}:2: pipeline 'p': duplicate pipeline id 'p': already defined at " in message
    )
    assert f"{tmp_path / 'good.yaml'}:1" in message
    assert f"{tmp_path / 'missing.yaml'}: no such file or directory" in message
