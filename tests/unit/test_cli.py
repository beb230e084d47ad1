"""The ``meta`` CLI: in-process through click's runner, and through the installed entry point as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from meta.cli import cli
from meta.plugins import manager
from meta.plugins.commands import BackendOption
from meta.plugins.hookspecs import hookimpl
from meta.plugins.targets import Target
from meta.spec.errors import PluginError
from meta.spec.model import Pipeline

ROOT = Path(__file__).resolve().parents[2]
META = str(Path(sys.executable).with_name("meta"))
EXAMPLE = ROOT / "dags" / "marketing_roi.yaml"

SIMPLE = """
pipeline: simple
owner: data
schedule: "@daily"
params: {word: {type: string, default: hello}, times: {type: integer, default: 1, minimum: 1}}
tasks:
  first: {shell: "echo {{ params.word }} $META_PARAM_TIMES"}
  second: {shell: "exit 99", upstream: [first]}
  third: {shell: "true", upstream: [second], trigger_rule: none_failed}
"""

FAILING = """
pipeline: failing
tasks:
  boom: {shell: "echo broken >&2; exit 3"}
  after: {shell: "true", upstream: [boom]}
"""

BROKEN = """
pipeline: broken
schedule: "every tuesday"
tasks:
  a: {shell: "true", upstream: [b]}
  b: {shell: "true", upstream: [a]}
  c: {shell: "true", upstream: [aa], trigger_rule: sometimes}
"""

TWO = """
pipeline: one
tasks: {a: {noop: true}}
---
pipeline: two
tasks: {a: {noop: true}, b: {noop: true, upstream: [a]}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def meta(*args: str, home: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, as a user runs it."""
    env = {**os.environ, "META_HOME": str(home)}
    return subprocess.run([META, *args], capture_output=True, text=True, env=env, cwd=cwd or ROOT, timeout=300)


# -- validate, list, schema, graph ----------------------------------------------------------------------------


def test_validate_ok(tmp_path: Path) -> None:
    result = invoke("validate", str(EXAMPLE), str(write(tmp_path, "s.yaml", SIMPLE)))
    assert result.exit_code == 0
    assert result.output == "2 pipelines OK\n"


def test_validate_reports_every_problem_and_exits_1(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    result = invoke("validate", str(path))
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "4 problems found:"
    assert any(line.startswith(f"  {path}:3:11: ") and "'tuesday'" in line for line in lines)
    assert f"  {path}:5:3: pipeline 'broken', task 'a': dependency cycle: a -> b -> a" in lines
    assert any(line.startswith(f"  {path}:7:") and "did you mean 'a'?" in line for line in lines)
    assert any(line.startswith(f"  {path}:7:") and "received 'sometimes'" in line for line in lines)


def test_validate_missing_file(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 1
    assert "no such file or directory" in result.stderr


def test_list(tmp_path: Path) -> None:
    write(tmp_path, "s.yaml", SIMPLE)
    result = invoke("list", str(tmp_path), str(EXAMPLE), "--json")
    assert result.exit_code == 0
    assert json.loads(result.output) == [
        {"pipeline": "simple", "schedule": "@daily (UTC)", "tasks": 3, "owner": "data"},
        {"pipeline": "marketing_roi", "schedule": "0 1 * * * (Europe/Zurich)", "tasks": 9, "owner": "growth"},
    ]
    table = invoke("list", str(EXAMPLE)).output.splitlines()
    assert table[0].split() == ["pipeline", "schedule", "tasks", "owner"]
    assert table[2].split() == ["marketing_roi", "0", "1", "*", "*", "*", "(Europe/Zurich)", "9", "growth"]


def test_schema_is_json_schema() -> None:
    result = invoke("schema")
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert isinstance(schema, dict) and schema  # the loader helper owns its content; here: valid, non-empty JSON


def test_graph_formats(tmp_path: Path) -> None:
    path = str(write(tmp_path, "s.yaml", SIMPLE))
    mermaid = invoke("graph", path, "--format", "mermaid").output
    assert mermaid.splitlines() == [
        "flowchart LR",
        '    n0["first"]',
        '    n1["second"]',
        '    n2["third<br/><i>none_failed</i>"]',
        "    n0 --> n1",
        "    n1 --> n2",
    ]
    dot = invoke("graph", path, "--format", "dot").output
    assert dot.splitlines() == [
        'digraph "simple" {',
        "    rankdir=LR;",
        "    node [shape=box];",
        '    "first" [label="first"];',
        '    "second" [label="second"];',
        '    "third" [label="third (none_failed)"];',
        '    "first" -> "second";',
        '    "second" -> "third";',
        "}",
    ]
    ascii_ = invoke("graph", path).output
    assert ascii_.splitlines() == [
        "simple",
        "  first",
        "    second   <- first",
        "      third  <- second  [none_failed]",
    ]


def test_graph_picks_a_pipeline_from_a_multi_document_file(tmp_path: Path) -> None:
    path = str(write(tmp_path, "two.yaml", TWO))
    ambiguous = CliRunner().invoke(cli, ["graph", path])
    assert ambiguous.exit_code == 2
    assert "defines 2 pipelines (one, two); choose one" in ambiguous.output
    assert invoke("graph", path, "--pipeline", "two").output.splitlines()[-1] == "    b  <- a"
    unknown = CliRunner().invoke(cli, ["graph", path, "--pipeline", "three"])
    assert unknown.exit_code == 2 and "no pipeline 'three'" in unknown.output


@pytest.mark.parametrize(
    "command", ["", "validate", "graph", "run", "runs", "schema", "list", "compile", "deploy", "import"]
)
def test_help(command: str) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Usage: " in result.output


# -- run and runs through the real entry point ----------------------------------------------------------------


def test_run_json_through_the_entry_point(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = write(tmp_path, "s.yaml", SIMPLE)
    proc = meta("run", str(path), "--json", "--param", "word=hi", "--param", "times=3", "--run-id", "r1", home=home)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "pipeline": "simple",
        "state": "success",
        "tasks": {
            "first": {"state": "success", "attempts": 1},
            "second": {"state": "skipped", "attempts": 1},
            "third": {"state": "success", "attempts": 1},
        },
        "run_id": "r1",
        "backend": "local",
    }
    assert "first" in proc.stderr and "running" in proc.stderr  # progress goes to stderr
    log = (home / "logs/simple/r1/first/attempt-1.log").read_text()
    assert "hi 3" in log

    runs = meta("runs", "--json", home=home, cwd=tmp_path)  # outside the repository's workspace: local history
    (row,) = json.loads(runs.stdout)
    assert (row["pipeline_id"], row["run_id"], row["state"]) == ("simple", "r1", "success")
    assert row["params"] == {"word": "hi", "times": 3}
    assert row["task_states"] == {"skipped": 1, "success": 2}


def test_failed_run_exits_1(tmp_path: Path) -> None:
    proc = meta("run", str(write(tmp_path, "f.yaml", FAILING)), home=tmp_path / "home")
    assert proc.returncode == 1
    assert "boom" in proc.stdout and "failed" in proc.stdout and "upstream_failed" in proc.stdout
    assert "failed" in proc.stdout.splitlines()[-2]  # "run ... of failing on local: failed"


def test_bad_param_is_a_clean_error(tmp_path: Path) -> None:
    proc = meta("run", str(write(tmp_path, "s.yaml", SIMPLE)), "--param", "times=0", home=tmp_path / "home")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == (
        "error: 1 problem found:\n  pipeline 'simple': param 'times': expected at least 1.0, got 0\n"
    )
    assert "Traceback" not in proc.stderr


def test_example_pipeline_runs_end_to_end(tmp_path: Path) -> None:
    home = tmp_path / "home"
    data = tmp_path / "data"
    proc = meta(
        "run", str(EXAMPLE), "--param", "country=FR", "--param", f"data_dir={data}", "--json", home=home, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["state"] == "success"
    assert {t: s["state"] for t, s in doc["tasks"].items()} == {
        "prepare_warehouse": "success",
        "extract_sales": "success",
        "extract_ads": "success",
        "load_sales": "success",
        "load_ads": "success",
        "wait_for_loads": "success",
        "transform_roi": "success",
        "refresh_dashboard": "success",
        "notify_failure": "skipped",
    }
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        channels = conn.execute("SELECT count(*), count(DISTINCT channel) FROM marketing_roi WHERE country = 'FR'")
        assert channels.fetchone() == (4, 4)
        assert conn.execute("SELECT count(*) FROM raw_sales").fetchone() == (240,)
    assert "<h1>Marketing ROI, FR" in (data / "dashboard" / "marketing_roi_FR.html").read_text()


def test_runs_table_and_empty_history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # outside the repository's workspace (meta.yaml): the local history, not the plane's
    monkeypatch.setenv("META_HOME", str(tmp_path / "empty"))
    assert invoke("runs").output.startswith("no runs recorded in ")
    monkeypatch.setenv("META_HOME", str(tmp_path / "home"))
    path = str(write(tmp_path, "s.yaml", SIMPLE))
    for run_id in ("a1", "a2"):
        assert CliRunner().invoke(cli, ["run", path, "--run-id", run_id]).exit_code == 0
    lines = invoke("runs", "--limit", "1").output.splitlines()
    assert lines[0].split()[:3] == ["pipeline", "run_id", "state"]
    assert len(lines) == 3 and lines[2].split()[:3] == ["simple", "a2", "success"]


def test_run_with_bad_logical_date_and_run_id(tmp_path: Path) -> None:
    path = str(write(tmp_path, "s.yaml", SIMPLE))
    bad_date = CliRunner().invoke(cli, ["run", path, "--logical-date", "yesterday"])
    assert bad_date.exit_code == 2 and "expected an ISO-8601 date" in bad_date.output
    bad_id = CliRunner().invoke(cli, ["run", path, "--run-id", "a/b"], env={"META_HOME": str(tmp_path)})
    assert bad_id.exit_code == 2 and "invalid run id 'a/b'" in bad_id.output


def test_unknown_backend(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["run", str(write(tmp_path, "s.yaml", SIMPLE)), "--backend", "locl"])
    assert result.exit_code == 2
    assert "no backend named 'locl'; did you mean 'local'?" in result.output


# -- compile / deploy / import reach plugins through the hooks -------------------------------------------------


class RecordingTarget(Target):
    """A real target registered through the plugin hook, writing one file per pipeline."""

    name = "recording"

    def __init__(self) -> None:
        self.deployed: list[tuple[list[str], dict[str, Any]]] = []

    def compile(self, pipelines: Sequence[Pipeline], out_dir: Path, sources: Sequence[Path] = ()) -> list[Path]:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for p in pipelines:
            path = out_dir / f"{p.id}.txt"
            path.write_text(f"{p.id}: {len(p.tasks)} tasks from {[s.name for s in sources]}\n")
            paths.append(path)
        return paths

    def deploy(self, pipelines: Sequence[Pipeline], **options: Any) -> list[str]:
        self.deployed.append(([p.id for p in pipelines], options))
        return [f"deployed {p.id}" for p in pipelines]


class RecordingPlugin:
    def __init__(self) -> None:
        self.target = RecordingTarget()

    @hookimpl
    def register_targets(self, register: Callable[[Target], None]) -> None:
        register(self.target)

    @hookimpl
    def register_commands(self, cli: click.Group, add_option: Callable[[BackendOption], None]) -> None:
        add_option(BackendOption("deploy", "recording", click.Option(["--region"], help="recording: where")))

        @cli.command("recording-hello")
        def hello() -> None:
            click.echo(f"hello from {self.target.name}")


@pytest.fixture
def recording() -> Any:
    plugin = RecordingPlugin()
    manager.plugin_manager().register(plugin, "recording-test")
    manager.targets.cache_clear()
    yield plugin.target
    manager.plugin_manager().unregister(name="recording-test")
    manager.targets.cache_clear()


def test_compile_and_deploy_go_to_the_named_target(tmp_path: Path, recording: RecordingTarget) -> None:
    spec = str(write(tmp_path, "s.yaml", SIMPLE))
    out = tmp_path / "out"
    result = invoke("compile", "--target", "recording", spec, "-o", str(out))
    assert result.exit_code == 0
    assert result.output == f"{out / 'simple.txt'}\n"
    assert (out / "simple.txt").read_text() == "simple: 3 tasks from ['s.yaml']\n"
    deployed = invoke("deploy", "--target", "recording", spec, "--region", "eu")
    assert deployed.output == "deployed simple\n"
    assert recording.deployed == [(["simple"], {"region": "eu"})]  # only the options given are passed
    assert "--region" in invoke("deploy", "--help").output


def test_a_plugin_adds_its_own_command(recording: RecordingTarget) -> None:
    assert invoke("recording-hello").output == "hello from recording\n"
    assert "recording-hello" in invoke("--help").output


def test_an_option_of_another_backend_is_refused_not_ignored(tmp_path: Path, recording: RecordingTarget) -> None:
    spec = str(write(tmp_path, "s.yaml", SIMPLE))
    refused = CliRunner().invoke(cli, ["deploy", "--target", "local", spec, "--region", "eu"])
    assert refused.exit_code == 2
    assert "--region is an option of recording; --target local does not take it" in refused.output
    assert recording.deployed == []
    parallel = CliRunner().invoke(cli, ["run", spec, "--backend", "recording", "--parallelism", "2"])
    assert parallel.exit_code == 2
    assert "--parallelism is an option of local; --backend recording does not take it" in parallel.output


def test_deploy_to_airflow_refuses_prefect_options_and_honours_its_own(tmp_path: Path) -> None:
    pytest.importorskip("meta_airflow")
    spec = str(write(tmp_path, "s.yaml", SIMPLE))
    for flag in ("--pool", "--api-url"):
        result = CliRunner().invoke(cli, ["deploy", "--target", "airflow", spec, flag, "x"])
        assert result.exit_code == 2
        assert f"{flag} is an option of prefect; --target airflow does not take it" in result.output
    specs = tmp_path / "specs"
    deployed = CliRunner().invoke(cli, ["deploy", "--target", "airflow", spec, "--specs-dir", str(specs)])
    assert deployed.exit_code == 0, deployed.output
    assert deployed.output == f"{specs / 'simple.json'}\n"


def test_parallelism_reaches_the_local_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from meta.builtin.local.target import LocalTarget

    seen: list[dict[str, Any]] = []
    configure = LocalTarget.configure

    def recording_configure(self: LocalTarget, **options: Any) -> LocalTarget:
        seen.append(options)
        configured = configure(self, **options)
        assert configured.parallelism == options.get("parallelism", self.parallelism)
        return configured

    monkeypatch.setattr(LocalTarget, "configure", recording_configure)
    spec = str(write(tmp_path, "s.yaml", SIMPLE))
    result = CliRunner().invoke(cli, ["run", spec, "--parallelism", "1"], env={"META_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert seen == [{"parallelism": 1}]
    zero = CliRunner().invoke(cli, ["run", spec, "--parallelism", "0"], env={"META_HOME": str(tmp_path)})
    assert zero.exit_code == 2 and "--parallelism" in zero.output


def test_run_id_under_dag_test_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dag.test() names its own run; a given --run-id must not be dropped silently (no Airflow is started)."""
    pytest.importorskip("meta_airflow")
    monkeypatch.delenv("META_AIRFLOW_URL", raising=False)
    result = CliRunner().invoke(
        cli, ["run", str(write(tmp_path, "s.yaml", SIMPLE)), "--backend", "airflow", "--run-id", "mine"]
    )
    assert result.exit_code == 2
    assert "run id 'mine': Airflow's dag.test() names its own run" in result.output


def test_a_misspelled_hookimpl_is_an_error_naming_plugin_and_hook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "misspelled_meta_plugin.py").write_text(
        textwrap.dedent(
            """
            from meta.plugins.hookspecs import hookimpl

            @hookimpl
            def register_target(register):
                raise AssertionError("never called")
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(manager, "BUILTIN_PLUGINS", (*manager.BUILTIN_PLUGINS, "misspelled_meta_plugin"))
    manager.reset()
    try:
        with pytest.raises(PluginError) as raised:
            manager.plugin_manager()
        message = str(raised.value)
        assert "plugin 'misspelled_meta_plugin' implements 'register_target', which is no meta hook" in message
        assert "did you mean 'register_targets'?" in message
        result = CliRunner().invoke(cli, ["list", "."])
        assert result.exit_code == 2 and "register_target" in result.output  # the CLI reports it cleanly
    finally:
        monkeypatch.undo()
        manager.reset()


def test_import_needs_a_registered_importer(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["import", "nosuchtool", "--dags-folder", str(tmp_path), "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert "no importer named 'nosuchtool'" in result.output


class CannedImporter:
    """A real importer registered through the plugin hook, returning a preset ImportOutcome (and printing, as
    tools being imported do)."""

    name = "canned"
    description = "test importer"

    def __init__(self) -> None:
        from meta.plugins.importing import ImportOutcome

        self.outcome = ImportOutcome()
        self.calls: list[tuple[Path, dict[str, Any]]] = []

    def import_pipelines(self, source: Path, **options: Any) -> Any:
        print("Filling up the DagBag")  # a tool's own chatter must not reach stdout
        self.calls.append((source, options))
        return self.outcome


@pytest.fixture
def canned() -> Any:
    importer = CannedImporter()

    class Plugin:
        @hookimpl
        def register_importers(self, register: Callable[[Any], None]) -> None:
            register(importer)

    manager.plugin_manager().register(Plugin(), "canned-test")
    manager.importers.cache_clear()
    yield importer
    manager.plugin_manager().unregister(name="canned-test")
    manager.importers.cache_clear()


def _pipeline(pid: str) -> Pipeline:
    return Pipeline.model_validate({"id": pid, "tasks": [{"id": "a", "action": {"kind": "noop"}}]})


def test_import_writes_what_maps_and_reports_notes_and_refusals_on_stderr(tmp_path: Path, canned: Any) -> None:
    from meta.plugins.importing import ImportedPipeline, ImportOutcome, ImportRefusal

    canned.outcome = ImportOutcome(
        imported=(
            ImportedPipeline(_pipeline("full")),
            ImportedPipeline(_pipeline("half"), ("task a: kept as an airflow_operator",), "dags/half.py:4"),
        ),
        refused=(ImportRefusal("DAG 'bad'", "task t: no neutral form", "dags/bad.py:9", "t.expand(...)", "no expand"),),
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["import", "canned", "--dags-folder", str(tmp_path), "-o", str(out)])
    assert result.exit_code == 1  # something was refused
    assert result.stdout == f"{out / 'full.yaml'}\n{out / 'half.yaml'}\n"  # only the files written
    assert (out / "full.yaml").exists() and (out / "half.yaml").exists() and not (out / "bad.yaml").exists()
    assert result.stderr.splitlines() == [
        "Filling up the DagBag",
        "partial: half (dags/half.py:4), written with 1 note:",
        "  - task a: kept as an airflow_operator",
        "refused: DAG 'bad' (dags/bad.py:9): task t: no neutral form",
        "  received: t.expand(...)",
        "  expected: no expand",
        "imported 2 (1 partial), refused 1",
    ]


def test_import_exit_codes(tmp_path: Path, canned: Any) -> None:
    from meta.plugins.importing import ImportedPipeline, ImportOutcome

    out = tmp_path / "out"
    args = ["import", "canned", "--dags-folder", str(tmp_path), "-o", str(out)]
    nothing = CliRunner().invoke(cli, args)  # a folder where nothing parsed
    assert nothing.exit_code == 1 and nothing.stdout == "" and not out.exists()
    assert f"error: nothing to import: canned found no definitions in {tmp_path}" in nothing.stderr
    canned.outcome = ImportOutcome(imported=(ImportedPipeline(_pipeline("only")),))
    everything = CliRunner().invoke(cli, [*args, "--dag-id", "only"])
    assert everything.exit_code == 0 and everything.stdout == f"{out / 'only.yaml'}\n"
    assert canned.calls[-1] == (tmp_path, {"dag_id": "only"})


AIRFLOW_FOLDER = {
    "good.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.bash import BashOperator

        with DAG("good", schedule="@daily"):
            BashOperator(task_id="hello", bash_command="echo hi")
    """,
    "scheduler_classes.py": """
        from airflow.sdk import DAG
        from airflow.providers.standard.operators.empty import EmptyOperator
        from airflow.timetables.interval import CronDataIntervalTimetable
        from airflow.timetables.trigger import CronTriggerTimetable

        with DAG("trigger", schedule=CronTriggerTimetable("0 3 * * *", timezone="Europe/Paris")):
            EmptyOperator(task_id="a")

        with DAG("interval", schedule=CronDataIntervalTimetable("0 4 * * *", timezone="UTC")):
            EmptyOperator(task_id="a")
    """,
    "mapped.py": """
        from airflow.sdk import DAG, task

        @task
        def double(x):
            return 2 * x

        with DAG("mapped", schedule=None):
            double.expand_kwargs([{"x": 1}, {"x": 2}])
    """,
    "empty.py": """
        from airflow.sdk import DAG

        with DAG("no_tasks", schedule=None):
            pass
    """,
    "broken.py": """
        raise RuntimeError("boom")
    """,
}


def test_import_airflow_folder_per_dag(tmp_path: Path) -> None:
    """The real Airflow importer on a folder mixing good DAGs, scheduler timetable classes, a refused DAG, a DAG
    without tasks and a file that does not import: the good ones are written, the rest listed, exit 1."""
    pytest.importorskip("meta_airflow")
    dags = tmp_path / "dags"
    dags.mkdir()
    for name, text in AIRFLOW_FOLDER.items():
        (dags / name).write_text(textwrap.dedent(text).lstrip())
    out = tmp_path / "out"
    result = meta("import", "airflow", "--dags-folder", str(dags), "-o", str(out), home=tmp_path / "home")
    assert result.returncode == 1, result.stderr
    assert result.stderr.count("Traceback (most recent call last)") == 1  # Airflow's, for broken.py; none of meta's
    # stdout lists exactly the written files: Airflow's "Failed to import" traceback went to stderr
    assert result.stdout.splitlines() == [str(out / f"{d}.yaml") for d in ("good", "interval", "trigger")]
    assert "Failed to import" in result.stderr and "RuntimeError: boom" in result.stderr
    assert "timezone: Europe/Paris" in (out / "trigger.yaml").read_text()
    assert f"partial: interval ({dags / 'scheduler_classes.py'}:9), written with 1 note:" in result.stderr
    assert "  - schedule: a cron *data interval* timetable becomes a trigger schedule" in result.stderr
    assert (
        f"refused: DAG 'mapped' ({dags / 'mapped.py'}:4): task double: expand_kwargs (one whole set of arguments "
        "per instance) has no neutral form" in result.stderr
    )
    assert "  received: double.expand_kwargs([{'x': 1}, {'x': 2}])" in result.stderr
    assert f"refused: DAG 'no_tasks' ({dags / 'empty.py'}:3): the DAG has no tasks" in result.stderr
    assert f"refused: DAG file ({dags / 'broken.py'}:1): Airflow could not import it: RuntimeError: boom" in (
        result.stderr
    )
    assert "pydantic" not in result.stderr
    assert result.stderr.splitlines()[-1] == "imported 3 (1 partial), refused 3"


def test_import_airflow_empty_folder_exits_1(tmp_path: Path) -> None:
    pytest.importorskip("meta_airflow")
    (tmp_path / "dags").mkdir()
    result = meta("import", "airflow", "--dags-folder", str(tmp_path / "dags"), "-o", str(tmp_path / "out"),
                  home=tmp_path / "home")  # fmt: skip
    assert result.returncode == 1 and result.stdout == ""
    assert "error: nothing to import: airflow found no definitions in" in result.stderr


def _running_after(pid: int, seconds: float) -> bool:
    """Is ``pid`` still running (not gone, not a zombie) after waiting up to ``seconds``?"""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return False
        if stat[stat.rindex(")") + 2] in "ZX":
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def test_ctrl_c_stops_task_processes_and_records_the_run_as_failed(tmp_path: Path) -> None:
    import signal
    import time

    pid_file = tmp_path / "sleep.pid"
    spec = write(
        tmp_path,
        "hang.yaml",
        f"""
        pipeline: hang
        tasks:
          hang: {{shell: "sleep 300 & echo $! > {pid_file}; wait"}}
        """,
    )
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [META, "run", str(spec), "--run-id", "r"],
        env={**os.environ, "META_HOME": str(home)},
        cwd=ROOT,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # A shell may start background jobs with SIGINT ignored; a user's terminal does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    sleeper = None
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        sleeper = int(pid_file.read_text())
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert not _running_after(sleeper, seconds=10), "the task's process outlived the interrupted runner"
    finally:  # never leave processes behind, whatever failed above
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        if sleeper is not None and _running_after(sleeper, seconds=0):
            os.kill(sleeper, signal.SIGKILL)
    runs = json.loads(meta("runs", "--json", home=home, cwd=tmp_path).stdout)
    assert [(r["run_id"], r["state"]) for r in runs] == [("r", "failed")]


def test_import_airflow_dags_then_run_them_locally(tmp_path: Path) -> None:
    """The real Airflow importer (meta-airflow), reached through the plugin hook, then the YAML run locally."""
    pytest.importorskip("meta_airflow")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "simple_dag.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow.sdk import DAG
            from airflow.providers.standard.operators.bash import BashOperator

            with DAG("imported_simple", start_date=datetime(2026, 1, 1), schedule=None) as dag:
                BashOperator(task_id="a", bash_command="echo hi") >> BashOperator(task_id="b", bash_command="exit 99")
            """
        )
    )
    home = tmp_path / "home"
    out = tmp_path / "out"
    imported = meta("import", "airflow", "--dags-folder", str(dags), "-o", str(out), home=home)
    assert imported.returncode == 0, imported.stderr
    # stdout lists exactly the written files (Airflow's own parse logging goes to stderr).
    assert imported.stdout.strip().splitlines() == [str(out / "imported_simple.yaml")]
    ran = meta("run", str(out / "imported_simple.yaml"), "--json", home=home)
    assert ran.returncode == 0, ran.stderr
    tasks = json.loads(ran.stdout)["tasks"]
    assert tasks == {"a": {"state": "success", "attempts": 1}, "b": {"state": "skipped", "attempts": 1}}


def test_readme_compile_commands_use_the_repositorys_workspace(tmp_path: Path) -> None:
    """`meta compile --target prefect|airflow dags/marketing_roi.yaml` from the repository root: meta.yaml places the
    example there, so the control plane watches what the backend cannot enforce (Prefect: its whole sla). A copy
    outside any workspace is refused by Prefect, each SLA feature named; Airflow enforces both kinds natively."""
    pytest.importorskip("meta_prefect")
    pytest.importorskip("meta_airflow")
    home = tmp_path / "home"
    for target in ("prefect", "airflow"):
        proc = meta("compile", "--target", target, "dags/marketing_roi.yaml", "-o", str(tmp_path / target), home=home)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / target / "marketing_roi.py").is_file()
    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "marketing_roi.yaml").write_text(EXAMPLE.read_text())
    refused = meta("compile", "--target", "prefect", "marketing_roi.yaml", "-o", str(alone / "p"), home=home, cwd=alone)
    assert refused.returncode != 0 and not (alone / "p").exists()
    for feature in ("sla.finish_by", "sla.max_duration"):
        assert (
            f"prefect cannot enforce {feature} itself; place the pipeline on a prefect backend in a workspace "
            "(meta.yaml) so the control plane (`meta serve`) watches it"
        ) in refused.stderr
    native = meta("compile", "--target", "airflow", "marketing_roi.yaml", "-o", str(alone / "a"), home=home, cwd=alone)
    assert native.returncode == 0, native.stderr
    assert "DeadlineReference.DAGRUN_QUEUED_AT" in (alone / "a" / "marketing_roi.py").read_text()


START_BY = """
pipeline: sales_daily
schedule: "0 1 * * *"
sla: {start_by: "02:00"}
tasks: {a: {noop: true}}
"""


def test_deploy_accepts_an_sla_only_the_workspaces_control_plane_watches(tmp_path: Path) -> None:
    """Airflow has no start deadline: `meta deploy` (with or without --target) writes the spec when the workspace
    places the pipeline on an airflow backend, and refuses it, naming sla.start_by, when nothing would watch it."""
    pytest.importorskip("meta_airflow")
    home = tmp_path / "home"
    alone = tmp_path / "alone"
    alone.mkdir()
    write(alone, "sales.yaml", START_BY)
    refused = meta("deploy", "--target", "airflow", "sales.yaml", "--specs-dir", "out", home=home, cwd=alone)
    assert refused.returncode != 0 and "airflow cannot enforce sla.start_by itself" in refused.stderr
    assert not (alone / "out").exists()

    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    write(project / "dags", "sales.yaml", START_BY)
    write(
        project,
        "meta.yaml",
        """
        backends:
          lake: {kind: airflow, url: "http://127.0.0.1:1", specs_dir: specs}
        placements:
          - {backend: lake, pipelines: ["sales_*"]}
        """,
    )
    planned = meta("deploy", "--dry-run", home=home, cwd=project)
    assert planned.returncode == 0, planned.stdout + planned.stderr
    assert "1 created" in planned.stdout and "0 refused" in planned.stdout
    deployed = meta("deploy", home=home, cwd=project)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert json.loads((project / "specs" / "sales_daily.json").read_text())["sla"]["start_by"] == "02:00:00"
    # --target from inside the workspace: the spec's workspace supervises the target too
    again = meta("deploy", "--target", "airflow", "dags/sales.yaml", "--specs-dir", "out", home=home, cwd=project)
    assert again.returncode == 0, again.stderr
