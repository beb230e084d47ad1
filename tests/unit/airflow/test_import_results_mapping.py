"""Importing DAGs whose tasks pass results (TaskFlow return values, XComArgs, ``ti.xcom_pull`` in templates) and
DAGs with dynamic task mapping (``expand``), with the real Airflow; each imported pipeline compiles back to the
same DAG (plan -> build -> import gives it again). What meta cannot express is refused with the construct, the
file:line and what to write instead."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from meta_airflow.build import build_dag
from meta_airflow.codegen import render_pipeline
from meta_airflow.importer import ImportedDag, import_dags, import_folder, pipeline_of
from meta_airflow.plan import plan

from meta import Pipeline
from tests.conformance.cases import CASES
from tests.unit.airflow.test_codegen import exec_dag

FILES = {
    "etl.py": """
        from airflow.sdk import DAG, task


        @task
        def extract():
            return {"rows": [1, 2, 3]}


        @task
        def transform(data, factor=2):
            return [r * factor for r in data["rows"]]


        @task
        def load(values, target):
            print(target, values)


        with DAG(dag_id="etl", schedule=None):
            load(transform(extract(), factor=3), target="warehouse")
    """,
    "mapped.py": """
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, task


        @task
        def numbers():
            return [1, 2, 3]


        @task
        def square(x, power=2):
            return x**power


        @task
        def total(values):
            return sum(values)


        def pair(x, y, sep):
            return f"{x}{sep}{y}"


        with DAG(dag_id="mapped", schedule=None):
            literal = square.expand(x=[4, 5])
            over_result = square.partial(power=3).override(task_id="cube", max_active_tis_per_dag=2).expand(
                x=numbers()
            )
            total(over_result)
            square.override(task_id="again").expand(x=over_result)  # second-order mapping
            PythonOperator.partial(task_id="pairs", python_callable=pair).expand(
                op_kwargs=[
                    {"x": 1, "y": "a", "sep": "-"},
                    {"x": 1, "y": "b", "sep": "-"},
                    {"x": 2, "y": "a", "sep": "-"},
                    {"x": 2, "y": "b", "sep": "-"},
                ]
            )
    """,
    "product.py": """
        from airflow.sdk import DAG, task


        @task
        def combine(x, y, label):
            return f"{label}:{x}{y}"


        with DAG(dag_id="product", schedule=None):
            combine.partial(label="p").expand(x=[1, 2], y=["a", "b", "c"])
    """,
    "pulls.py": """
        from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, XComArg


        def count():
            return 42


        def show(value, text):
            print(value, text)


        with DAG(dag_id="pulls", schedule=None):
            counted = PythonOperator(task_id="count", python_callable=count)
            say = BashOperator(
                task_id="say",
                bash_command="echo {{ ti.xcom_pull(task_ids='count') }} {{ ti.xcom_pull(task_ids='count', key='k') }}",
                env={"N": str(XComArg(counted)), "RAW": counted.output},
                append_env=True,
            )
            PythonOperator(
                task_id="show",
                python_callable=show,
                op_args=[say.output],
                op_kwargs={"text": "{{ task_instance.xcom_pull(task_ids='say') }}"},
            )
            SQLExecuteQueryOperator(
                task_id="store",
                conn_id="wh",
                sql="insert into t values (%(n)s) -- {{ ti.xcom_pull('count') }}",
                parameters={"n": counted.output},
            )
            counted >> say
    """,
    "etl_run.py": """
        import json
        from pathlib import Path

        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.sdk import DAG, task


        @task
        def extract():
            return {"rows": [1, 2, 3]}


        @task
        def transform(data, factor):
            return [r * factor for r in data["rows"]]


        @task
        def square(x, power):
            return x**power


        @task
        def total(values):
            return sum(values)


        @task
        def write(text, squares, path):
            Path(path).write_text(json.dumps({"text": text, "squares": squares}))


        with DAG(dag_id="etl_run", schedule=None):
            squares = square.partial(power=2).expand(x=transform(extract(), factor=3))
            say = BashOperator(task_id="say", bash_command="echo total={{ ti.xcom_pull(task_ids='total') }}")
            total(squares) >> say
            write(say.output, squares, path=str(Path(__file__).with_name("out.json")))
    """,
    "refused.py": """
        from airflow.providers.standard.operators.bash import BashOperator
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, task, task_group


        @task
        def numbers():
            return [1, 2]


        @task(multiple_outputs=True)
        def stats():
            return {"n": 2}


        @task
        def double(x):
            return 2 * x


        def pair(x, y):
            return (x, y)


        with DAG(dag_id="by_expand_kwargs", schedule=None):
            double.expand_kwargs([{"x": 1}, {"x": 2}])

        with DAG(dag_id="bash_mapped", schedule=None):
            BashOperator.partial(task_id="echo").expand(bash_command=["echo 1", "echo 2"])

        with DAG(dag_id="by_key", schedule=None):
            double(stats()["n"])

        with DAG(dag_id="transformed", schedule=None):
            double.expand(x=numbers().map(str))

        with DAG(dag_id="zipped_sets", schedule=None):
            PythonOperator.partial(task_id="zipped", python_callable=pair).expand(
                op_kwargs=[{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]
            )

        with DAG(dag_id="mapped_group", schedule=None):

            @task_group
            def per_number(n):
                double.override(task_id="twice")(n)

            per_number.expand(n=[1, 2])

        with DAG(dag_id="zipped_results", schedule=None):
            double.expand(x=numbers().zip(numbers()))

        with DAG(dag_id="passthrough_result", schedule=None):
            from airflow.providers.standard.sensors.bash import BashSensor

            BashSensor(task_id="wait_for", bash_command=numbers())

        with DAG(dag_id="sql_result", schedule=None):
            from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

            rows = SQLExecuteQueryOperator(task_id="rows", conn_id="wh", sql="select 1")
            double(rows.output)
    """,
}


@pytest.fixture(scope="module")
def results_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("results_dags")
    for name, text in FILES.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


@pytest.fixture(scope="module")
def imported(results_folder: Path) -> dict[str, ImportedDag]:
    return {r.dag_id: r for r in import_folder(results_folder)}


def compiles_back(pipeline: Pipeline, tmp_path: Path) -> None:
    """The pipeline compiles for Airflow (both deployment modes: the loader's DAG and the generated file), and
    importing the compiled DAG gives the same pipeline."""
    dag_plan = plan(pipeline)
    assert [t.task_id for t in dag_plan.tasks] == [t.id for t in pipeline.tasks]  # listed upstream-first
    for dag in (build_dag(pipeline), exec_dag(render_pipeline(pipeline), tmp_path)):
        again = pipeline_of(dag, {})
        assert again.refused is None, again.refused
        assert again.pipeline == pipeline


def test_taskflow_return_values_flow_between_tasks(imported: dict[str, ImportedDag], tmp_path: Path) -> None:
    result = imported["etl"]
    assert result.status == "full", (result.refused, result.notes)  # nothing left out any more
    p = result.pipeline
    assert p is not None
    assert [t.id for t in p.tasks] == ["extract", "transform", "load"]
    assert p.task("transform").action.kwargs == {"data": "{{ tasks.extract.result }}", "factor": 3}
    # a positional XComArg (load(transform(...))) is passed by the parameter's name
    assert p.task("load").action.kwargs == {"values": "{{ tasks.transform.result }}", "target": "warehouse"}
    assert p.task("load").upstream == ("transform",) and p.task("transform").result_references() == ["extract"]
    compiles_back(p, tmp_path)


def test_expand_over_a_literal_list_and_over_a_task_result(imported: dict[str, ImportedDag], tmp_path: Path) -> None:
    result = imported["mapped"]
    assert result.status == "full", (result.refused, result.notes)
    p = result.pipeline
    assert p is not None
    square = p.task("square")
    assert (square.action.callable, square.action.kwargs, square.map) == ("mapped_tasks:square", {}, {"x": [4, 5]})
    cube = p.task("cube")
    assert cube.action.kwargs == {"power": 3} and cube.map == {"x": "{{ tasks.numbers.result }}"}
    assert cube.upstream == ("numbers",) and cube.max_active == 2  # max_active_tis_per_dag
    # the reduce takes the mapped task's result (the list of its instances' results)
    assert p.task("total").action.kwargs == {"values": "{{ tasks.cube.result }}"} and not p.task("total").mapped
    assert p.task("again").map == {"x": "{{ tasks.cube.result }}"}
    # PythonOperator.partial().expand(op_kwargs=[...]): every combination of x and y, sep the same in each set
    pairs = p.task("pairs")
    assert pairs.action.callable == "mapped_tasks:pair" and pairs.action.kwargs == {"sep": "-"}
    assert pairs.map == {"x": [1, 2], "y": ["a", "b"]}
    compiles_back(p, tmp_path)


def test_partial_expand_over_several_names_is_the_cross_product(
    imported: dict[str, ImportedDag], tmp_path: Path
) -> None:
    from meta import expand_map

    result = imported["product"]
    p = result.pipeline
    assert p is not None and result.status == "full"
    (combine,) = p.tasks
    assert combine.action.kwargs == {"label": "p"} and combine.map == {"x": [1, 2], "y": ["a", "b", "c"]}
    instances = expand_map(combine, {}, lambda _tid: None)
    assert [(i["x"], i["y"]) for i in instances] == [(1, "a"), (1, "b"), (1, "c"), (2, "a"), (2, "b"), (2, "c")]
    compiles_back(p, tmp_path)
    # Airflow expands the compiled task over the same names
    mapped = build_dag(p).task_dict["combine"]
    assert mapped.is_mapped and sorted(mapped.op_kwargs_expand_input.value) == ["x", "y"]


def test_xcom_pulls_in_templates_become_result_references(imported: dict[str, ImportedDag], tmp_path: Path) -> None:
    result = imported["pulls"]
    p = result.pipeline
    assert p is not None and result.status == "partial"
    say = p.task("say").action
    assert say.command == (
        "echo {{ tasks.count.result }} {{ ti.xcom_pull(task_ids='count', key='k') }}"  # a pull by key stays
    )
    # str(XComArg) is Airflow's own pull (text), .output the value itself
    assert say.env == {"N": "{{ tasks.count.result | string }}", "RAW": "{{ tasks.count.result }}"}
    show = p.task("show")
    assert show.action.kwargs == {"value": "{{ tasks.say.result }}", "text": "{{ tasks.say.result | string }}"}
    store = p.task("store").action
    assert store.statement == "insert into t values (%(n)s) -- {{ tasks.count.result }}"
    assert store.parameters == {"n": "{{ tasks.count.result }}"}
    assert set(p.task("store").upstream) == {"count"}
    assert result.notes == [
        "task say: command: ti.xcom_pull(task_ids='count', key='k') (it pulls the key 'k', not the return value) is "
        "kept as it is; it renders under Airflow only (meta passes a task's return value as {{ tasks.ID.result }})"
    ]
    compiles_back(p, tmp_path)


REFUSED = {
    # dag id: (fragment of the reason, line of the DAG file it points at (the task's function or task_id=), what to do)
    "by_expand_kwargs": ("expand_kwargs (one whole set of arguments per instance) has no neutral form", 17,
                         ".expand(name=[...])"),
    "bash_mapped": ("dynamic mapping of BashOperator has no neutral form: meta maps python tasks only", 29,
                    "a python task (@task or PythonOperator) mapped over keyword arguments"),
    "by_key": ("takes the XCom 'n' of task stats (multiple_outputs or a pushed key)", 17,
               "the whole result of stats"),
    "transformed": ("is an XComArg .map()", 17, "do the transformation in the consuming task"),
    "zipped_sets": ("varies ['x', 'y'] together", 38, "every combination of the varying values"),
    "mapped_group": ("belongs to a mapped task group", 46, "each task of the group mapped on its own"),
    "zipped_results": ("expand x is an XComArg .zip()", 17, "do the transformation in the consuming task"),
    "passthrough_result": ("BashSensor arguments ['bash_command'] take results of other tasks (XComArgs)", 56,
                           "a python task (@task) that takes the result as an argument"),
    "sql_result": ("takes the result of rows, which becomes a sql task; only python and shell tasks have a result",
                   17, "results of python (@task, PythonOperator) or shell (BashOperator) tasks"),
}  # fmt: skip


@pytest.mark.parametrize("dag_id", sorted(REFUSED))
def test_mappings_and_xcoms_without_neutral_form_are_refused_with_reason_and_place(
    imported: dict[str, ImportedDag], results_folder: Path, dag_id: str
) -> None:
    reason, line, todo = REFUSED[dag_id]
    result = imported[dag_id]
    assert result.status == "refused" and not result.unexpected
    assert result.refused and reason in result.refused, result.refused
    assert result.location == f"{results_folder / 'refused.py'}:{line}"
    assert result.received and result.expected and todo in result.expected, result.expected


def test_multiple_outputs_is_noted() -> None:
    from meta_airflow.import_report import example_folders

    (folder, _) = example_folders()
    (result,) = import_folder(folder, dag_id="example_task_state_store_mapped")
    assert result.pipeline is not None and result.pipeline.task("process_table").map == {
        "table": "{{ tasks.get_tables.result }}"
    }
    assert any("process_table: multiple_outputs=True" in n for n in result.notes)


MAPPING_CASES = [c for c in CASES if any(t.mapped or t.result_references() for t in c.pipeline.tasks)]


@pytest.mark.parametrize("case", MAPPING_CASES, ids=lambda c: c.name)
def test_compiled_results_and_mapping_import_back(case) -> None:
    """What meta compiles (XComArgs, ti.xcom_pull Jinja, TaskFlow mapped_python tasks) reads back as results and
    ``map``, task for task."""
    again = pipeline_of(build_dag(case.pipeline), {})
    assert again.refused is None, again.refused
    assert again.pipeline is not None
    for task in case.pipeline.tasks:
        back = again.pipeline.task(task.id)
        assert (back.action, back.map, set(back.upstream)) == (task.action, task.map, set(task.upstream)), task.id
    assert pipeline_of(build_dag(again.pipeline), {}).pipeline == again.pipeline


def test_mapped_results_in_templates_import_back(tmp_path: Path) -> None:
    """meta compiles a mapped task's result inside text to its own Jinja (the instances' XComs as a list), in
    expressions and in statements; importing reads it back as ``tasks.X.result``."""
    p = Pipeline.model_validate(
        {
            "id": "templated",
            "tasks": [
                {"id": "square", "action": {"kind": "python", "callable": "math:sqrt"}, "map": {"x": [1, 4, 9]}},
                {
                    "id": "show",
                    "action": {
                        "kind": "shell",
                        "command": "echo {{ tasks.square.result | length }} "
                        "{% for v in tasks.square.result %}{{ v }} {% endfor %}",
                    },
                },
                {"id": "one", "action": {"kind": "shell", "command": "echo 1"}},
                {
                    "id": "use",
                    "action": {
                        "kind": "python",
                        "callable": "builtins:print",
                        "kwargs": {"values": "{{ tasks.square.result }}", "text": "n={{ tasks.one.result }}"},
                    },
                },
            ],
        }
    )
    assert build_dag(p).task_dict["show"].bash_command.count("ti.xcom_pull(task_ids=['square'])") == 2
    compiles_back(p, tmp_path)


def test_a_literal_list_of_results_to_map_over_is_refused(tmp_path: Path) -> None:
    (tmp_path / "listed.py").write_text(
        textwrap.dedent("""
            from airflow.sdk import DAG, task


            @task
            def one():
                return 1


            @task
            def double(x):
                return 2 * x


            with DAG(dag_id="listed", schedule=None):
                double.expand(x=[one(), 2])
        """).lstrip()
    )
    (result,) = import_folder(tmp_path)
    assert result.refused and "expand x is a list holding results of other tasks" in result.refused, result.refused


def test_an_imported_pipeline_passes_results_and_maps_on_the_local_runner(
    imported: dict[str, ImportedDag], results_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The imported callables are the @task functions, lifted out of the DAG file into ``etl_run_tasks.py`` (their
    TaskFlow decorators stripped), so the pipeline runs: results flow, the mapped task expands over a result."""
    import json

    from meta import LocalRunner

    result = imported["etl_run"]
    p = result.pipeline
    assert p is not None and result.status == "full", (result.refused, result.notes)
    assert p.task("extract").action.callable == "etl_run_tasks:extract"
    assert p.task("say").action.command == "echo total={{ tasks.total.result }}"
    specs = tmp_path / "specs"
    specs.mkdir()
    for lifted in import_dags(results_folder, dag_id="etl_run").files:
        (specs / lifted.path).write_text(lifted.text)
    assert "@task" not in (specs / "etl_run_tasks.py").read_text()
    monkeypatch.syspath_prepend(str(specs))  # the module beside the specs, not the dags folder
    outcome = LocalRunner(home=tmp_path).run(p)
    assert str(outcome.result.state) == "success", outcome.result
    instances = outcome.result.tasks["square"].instances
    assert instances is not None and sorted(instances) == [0, 1, 2]
    written = json.loads((results_folder / "out.json").read_text())
    assert written == {"text": "total=126", "squares": [9, 36, 81]}  # the shell result: its last line of output
    compiles_back(p, tmp_path)


def test_a_task_function_defined_in_a_loop_is_lifted_once(tmp_path: Path) -> None:
    """In a loop, each ``@task def step()`` replaces the module's ``step``, but all of them are the one ``def`` of
    the file: it is lifted once, and every task references it (Airflow too runs that same code for each)."""
    (tmp_path / "looped.py").write_text(
        textwrap.dedent("""
            from airflow.sdk import DAG, task

            with DAG(dag_id="looped", schedule=None):
                for n in (1, 2):

                    @task(task_id=f"step_{n}")
                    def step():
                        return 1

                    step()
        """).lstrip()
    )
    (result,) = import_folder(tmp_path)
    assert result.refused is None and result.pipeline is not None, result.refused
    assert [t.action.callable for t in result.pipeline.tasks] == ["looped_tasks:step", "looped_tasks:step"]


@pytest.mark.parametrize(
    ("dag_id", "task_id", "line"),
    [
        ("example_dynamic_task_mapping", "sum_it", "Total was 9"),  # add_one.expand(x=[1, 2, 3]), then the reduce
        ("example_task_mapping_second_order", "add_10", None),  # expand over a mapped task's result
        ("example_params_trigger_ui", "print_greetings", "Bonjour Thomas!"),  # three maps over one result
    ],
)
def test_airflows_own_mapping_examples_run_after_import(
    dag_id: str, task_id: str, line: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from meta_airflow.import_report import example_folders

    from meta import LocalRunner

    folder = example_folders()[0]
    (result,) = import_folder(folder, dag_id=dag_id)
    assert result.pipeline is not None, result.refused
    specs = tmp_path / "specs"  # the callables are lifted out of the example's DAG file, into a module beside them
    specs.mkdir()
    for lifted in import_dags(folder, dag_id=dag_id).files:
        (specs / lifted.path).write_text(lifted.text)
        monkeypatch.delitem(sys.modules, Path(lifted.path).stem, raising=False)  # another DAG's module of that file
    monkeypatch.syspath_prepend(str(specs))
    outcome = LocalRunner(home=tmp_path).run(result.pipeline)
    assert str(outcome.result.state) == "success"
    assert {str(t.state) for t in outcome.result.tasks.values()} == {"success"}
    if line is not None:
        assert outcome.log_dir is not None
        assert line in (outcome.log_dir / task_id / "attempt-1.log").read_text()


def test_metas_own_operator_subclasses_import_back_as_shell_and_sql(tmp_path: Path) -> None:
    """A shell task with a secret in env compiles to MetaBashOperator, a sql task whose parameters hold a mapped
    task's result to MetaSQLExecuteQueryOperator: both read back as the tasks they came from."""
    p = Pipeline.model_validate(
        {
            "id": "subclasses",
            "tasks": [
                {"id": "square", "action": {"kind": "python", "callable": "math:sqrt"}, "map": {"x": [1, 4]}},
                {
                    "id": "store",
                    "action": {
                        "kind": "sql",
                        "conn": "wh",
                        "statement": "insert into t select unnest(%(v)s)",
                        "parameters": {"v": "{{ tasks.square.result }}"},
                    },
                },
                {
                    "id": "push",
                    "action": {"kind": "shell", "command": "echo $TOKEN", "env": {"TOKEN": "${secret:api}"}},
                },
            ],
        }
    )
    dag = build_dag(p)
    assert type(dag.task_dict["store"]).__name__ == "MetaSQLExecuteQueryOperator"
    assert type(dag.task_dict["push"]).__name__ == "MetaBashOperator"
    compiles_back(p, tmp_path)
