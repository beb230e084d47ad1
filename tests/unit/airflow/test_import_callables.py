"""Lifting a DAG file's callables into a module beside the specs (import_callables.py), with the real Airflow: the
imported pipelines run on meta's local runner after the dags folder is gone, and what cannot be lifted (closures
over non-constants, lambdas, functions using the DAG objects) is refused with file:line and what to do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from meta_airflow.build import build_dag
from meta_airflow.importer import import_dags, pipeline_of

from meta import ImportOutcome
from meta.authoring.load import pipeline_to_yaml

META = str(Path(sys.executable).with_name("meta"))

LIFTED = {
    "taskflow_dag.py": """
        import json

        import pendulum
        from airflow.sdk import dag, task

        SCALE = 3
        label = "a module-level name the nested constant must not clash with"


        def describe(n):
            return "n=" + json.dumps(n)


        @dag(schedule=None, start_date=pendulum.datetime(2024, 1, 1))
        def nested():
            import math

            offset = 10  # constants of the enclosing function: written as module-level assignments
            label = "sum"

            @task
            def extract():
                \"\"\"The numbers.
                (a docstring's lines stay as they are)\"\"\"
                return [1, 2, 3]

            @task(retries=1)
            def transform(values: list) -> int:
                return sum(v * SCALE for v in values) + offset

            @task
            def load(total):
                return f"{label}: {describe(int(math.sqrt(total * total)))}"

            load(transform(extract()))


        nested()
    """,
    "block_dag.py": """
        import statistics as stats
        from datetime import datetime

        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG, task

        WEIGHTS = {"a": 2, "b": 5}


        def weighted(name):
            return WEIGHTS[name] * 10


        def heaviest():
            return max(WEIGHTS, key=weighted)


        with DAG("block", schedule=None, start_date=datetime(2024, 1, 1)) as dag:

            @task
            def mean():
                return stats.mean(weighted(k) for k in WEIGHTS)

            mean() >> PythonOperator(task_id="heaviest", python_callable=heaviest)
    """,
    "two_dags.py": """
        from airflow.sdk import DAG, task

        with DAG("first", schedule=None):

            @task
            def extract():
                return "first"

            extract()

        with DAG("second", schedule=None):

            @task
            def extract():
                return "second"

            extract()
    """,
    "factories.py": """
        from airflow.sdk import dag, task


        @dag(schedule=None)
        def alpha():
            n = 1

            @task
            def extract():
                return n

            extract()


        @dag(schedule=None)
        def beta():
            n = 2

            @task
            def extract():
                return n * 10

            extract()


        alpha()
        beta()
    """,
    "methods.py": """
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG

        PREFIX = "job-"


        class Jobs:
            @staticmethod
            def name():
                return PREFIX + "a"


        with DAG("methods", schedule=None):
            PythonOperator(task_id="name", python_callable=Jobs.name)
    """,
    "carried.py": """
        import functools

        try:
            import ujson_that_is_not_installed as fastjson
        except ImportError:
            import json as fastjson

        from airflow.sdk import dag, task

        A = 1
        B = A + 1
        for i in range(3):
            LAST = i
        ITEMS = []
        ITEMS.append(4)


        @functools.lru_cache
        def cached(x):
            return x * B


        def twice(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return 2 * fn(*args, **kwargs)

            return wrapper


        @dag(schedule=None)
        def carried():
            base = 5
            from os import path as p

            def fact(n):
                return 1 if n <= 1 else n * fact(n - 1)

            @task
            def compute(x=base):
                return fact(x) + cached(2) + LAST + len(p.sep) + len(fastjson.dumps([1])) + sum(ITEMS)

            @task
            @twice  # below @task: it wraps the code the task runs, so it is kept
            def doubled():
                return 21

            compute() >> doubled()


        carried()
    """,
    "common.py": """
        def greet():
            return "hello"
    """,
    "helpers_dag.py": """
        import common
        from airflow.sdk import DAG, task

        with DAG("helpers_dag", schedule=None):

            @task
            def shout():
                return common.greet().upper()

            shout()
    """,
    "uses_common.py": """
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG
        from common import greet

        with DAG("uses_common", schedule=None):
            PythonOperator(task_id="greet", python_callable=greet)
    """,
}

REFUSED = {
    "closure.py": """
        from airflow.sdk import dag, task


        @dag(schedule=None)
        def closure(limit=5):
            rows = list(range(3))

            @task
            def count():
                return len(rows) + limit

            count()


        closure()
    """,
    "lambda_dag.py": """
        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG

        with DAG("lambda_dag", schedule=None):
            PythonOperator(task_id="one", python_callable=lambda: 1)
    """,
    "loop_defaults.py": """
        from airflow.sdk import DAG, task

        with DAG("loop_defaults", schedule=None):
            for n in (1, 2):

                @task(task_id=f"step_{n}")
                def step(k=n):
                    return k

                step()
    """,
    "wrapped.py": """
        import functools

        from airflow.providers.standard.operators.python import PythonOperator
        from airflow.sdk import DAG


        def logged(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                return fn(*args, **kwargs)

            return wrapper


        def work():
            return 1


        with DAG("wrapped", schedule=None):
            PythonOperator(task_id="work", python_callable=logged(work))
    """,
    "uses_the_dag.py": """
        from airflow.sdk import DAG, task

        with DAG("uses_the_dag", schedule=None) as the_dag:

            @task
            def who():
                return the_dag.dag_id

            who()
    """,
}


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip())
    return folder


def write_outcome(outcome: ImportOutcome, out: Path) -> None:
    """What ``meta import airflow -o OUT`` writes: the specs and the files beside them."""
    out.mkdir()
    for extra in outcome.files:
        (out / extra.path).write_text(extra.text)
    for item in outcome.imported:
        (out / f"{item.pipeline.id}.yaml").write_text(pipeline_to_yaml(item.pipeline))


@pytest.fixture(scope="module")
def lifted(tmp_path_factory: pytest.TempPathFactory) -> tuple[ImportOutcome, Path]:
    """The LIFTED folder imported (``meta import airflow -o out``, and in Python), and the dags folder deleted."""
    root = tmp_path_factory.mktemp("lifted")
    dags = write_folder(root / "dags", LIFTED)
    outcome = import_dags(dags)
    assert not outcome.refused, [str(r) for r in outcome.refused]
    env = {**os.environ, "META_HOME": str(root / "home")}
    cli = [META, "import", "airflow", "--dags-folder", str(dags), "-o", str(root / "out")]
    written = subprocess.run(cli, capture_output=True, text=True, env=env, cwd=root, timeout=300)
    assert written.returncode == 0, written.stderr
    lifted = [f"{root / 'out' / f.path}" for f in outcome.files]
    assert written.stdout.splitlines()[: len(lifted)] == lifted  # stdout lists the lifted modules, then the specs
    write_outcome(outcome, root / "python_out")  # the Python API writes the same files
    for f in [*outcome.files, *(f"{i.pipeline.id}.yaml" for i in outcome.imported)]:
        name = getattr(f, "path", f)
        assert (root / "out" / name).read_text() == (root / "python_out" / name).read_text(), name
    shutil.copy(dags / "common.py", root / "out")  # as the notes say: a module of the dags folder, deployed beside
    shutil.rmtree(dags)
    return outcome, root


def callables(outcome: ImportOutcome) -> dict[str, dict[str, str]]:
    return {
        i.pipeline.id: {t.id: getattr(t.action, "callable", "") for t in i.pipeline.tasks} for i in outcome.imported
    }


def test_callables_are_referenced_in_a_module_beside_the_specs(lifted: tuple[ImportOutcome, Path]) -> None:
    outcome, _root = lifted
    assert callables(outcome) == {
        "alpha": {"extract": "factories_tasks:alpha__extract"},  # one name in two @dag functions: distinct names
        "beta": {"extract": "factories_tasks:beta__extract"},
        "block": {"mean": "block_dag_tasks:mean", "heaviest": "block_dag_tasks:heaviest"},
        "carried": {"compute": "carried_tasks:compute", "doubled": "carried_tasks:doubled"},
        "first": {"extract": "two_dags_tasks:first__extract"},  # one name in two with DAG blocks: distinct names
        "helpers_dag": {"shout": "helpers_dag_tasks:shout"},
        "nested": {
            "extract": "taskflow_dag_tasks:extract",
            "transform": "taskflow_dag_tasks:transform",
            "load": "taskflow_dag_tasks:load",
        },
        "methods": {"name": "methods_tasks:Jobs.name"},  # a module-level class is carried whole
        "second": {"extract": "two_dags_tasks:second__extract"},
        "uses_common": {"greet": "common:greet"},  # another module of the dags folder keeps its import name
    }
    assert sorted(f.path for f in outcome.files) == [
        "block_dag_tasks.py",
        "carried_tasks.py",
        "factories_tasks.py",
        "helpers_dag_tasks.py",
        "methods_tasks.py",
        "taskflow_dag_tasks.py",
        "two_dags_tasks.py",
    ]
    (common,) = [i for i in outcome.imported if i.pipeline.id == "uses_common"]
    assert common.notes == (
        "task greet: its callable common:greet is in common.py, a module of the dags folder (not the DAG file): "
        "deploy that module beside the specs",
    )
    (helpers,) = [i for i in outcome.imported if i.pipeline.id == "helpers_dag"]
    assert helpers.notes == (
        "the lifted module helpers_dag_tasks.py imports common, a module of the dags folder: deploy it beside the "
        "specs",
    )
    assert all(not i.notes for i in outcome.imported if i.pipeline.id not in ("uses_common", "helpers_dag"))
    for item in outcome.imported:  # compiling a lifted pipeline and importing it back gives it again
        again = pipeline_of(build_dag(item.pipeline), {})
        assert again.pipeline == item.pipeline, item.pipeline.id


def test_the_lifted_module_has_what_the_functions_need_and_no_dag(lifted: tuple[ImportOutcome, Path]) -> None:
    _outcome, root = lifted
    text = (root / "out" / "taskflow_dag_tasks.py").read_text()
    # the file's imports, the enclosing function's import, module constants, the helper, the enclosing constants
    for line in ("import json", "import math", "SCALE = 3", "def describe(n):", "offset = 10", 'nested__label = "sum"'):
        assert f"\n{line}\n" in text, (line, text)
    assert "    return [1, 2, 3]\n" in text and "    (a docstring's lines stay as they are)" in text
    assert 'return f"{nested__label}: {describe(int(math.sqrt(total * total)))}"' in text  # renamed where used
    assert "def transform(values: list) -> int:\n    return sum(v * SCALE for v in values) + offset\n" in text
    for dag_code in ("@dag", "@task", "nested()", "pendulum", "a module-level name"):
        assert dag_code not in text, dag_code
    block = (root / "out" / "block_dag_tasks.py").read_text()
    assert "import statistics as stats" in block and 'WEIGHTS = {"a": 2, "b": 5}' in block
    assert "DAG" not in block.split('"""')[-1] and "PythonOperator" not in block and "datetime" not in block
    two = (root / "out" / "two_dags_tasks.py").read_text()
    assert 'def first__extract():\n    return "first"' in two and 'def second__extract():\n    return "second"' in two
    carried = (root / "out" / "carried_tasks.py").read_text()
    assert "try:\n    import ujson_that_is_not_installed as fastjson\nexcept ImportError:\n" in carried  # kept whole
    assert "\n@functools.lru_cache\ndef cached(x):\n" in carried and "\nfrom os import path as p\n" in carried
    assert "\ni = 2\n" in carried and "\nLAST = i\n" in carried  # a loop's name: the last value, as a body reads it
    assert "\n@twice  # below @task: it wraps the code the task runs, so it is kept\ndef doubled():\n" in carried
    assert "\nITEMS = [4]\n" in carried  # changed after its assignment: the value the DAG module ended with
    factories = (root / "out" / "factories_tasks.py").read_text()
    assert "\nalpha__n = 1\n" in factories and "def beta__extract():\n    return beta__n * 10" in factories
    # each module imports on its own, without the (deleted) DAG files or Airflow's DAG definitions
    probe = (
        "import sys; import block_dag_tasks, taskflow_dag_tasks, two_dags_tasks as t; "
        "print(t.first__extract(), taskflow_dag_tasks.transform([1]), block_dag_tasks.heaviest(), "
        "sorted(m for m in sys.modules if m.endswith('_dag') or m == 'two_dags' or m.startswith('airflow')))"
    )
    ran = subprocess.run([sys.executable, "-c", probe], cwd=root / "out", capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["first", "13", "b", "[]"]


def run_spec(root: Path, pipeline_id: str) -> dict[str, object]:
    """``meta run OUT/<id>.yaml --json`` in a fresh process; the task states and each task's logged result."""
    home = root / "home"
    ran = subprocess.run(
        [META, "run", str(root / "out" / f"{pipeline_id}.yaml"), "--json", "--run-id", "r1"],
        capture_output=True,
        text=True,
        env={**os.environ, "META_HOME": str(home)},
        cwd=root,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads(ran.stdout[ran.stdout.index("{") :])
    logs = home / "logs" / pipeline_id / "r1"
    returned = {}
    for task_id in report["tasks"]:
        log = (logs / task_id / "attempt-1.log").read_text()
        returned[task_id] = next(line for line in log.splitlines() if line.startswith("returned: "))[10:]
    return {"states": {t: r["state"] for t, r in report["tasks"].items()}, "returned": returned}


@pytest.mark.parametrize(
    ("pipeline_id", "returned"),
    [
        ("nested", {"extract": "[1, 2, 3]", "transform": "28", "load": "'sum: n=28'"}),
        ("block", {"mean": "35", "heaviest": "'b'"}),
        ("first", {"extract": "'first'"}),
        ("second", {"extract": "'second'"}),
        ("alpha", {"extract": "1"}),
        ("beta", {"extract": "20"}),
        ("methods", {"name": "'job-a'"}),
        ("helpers_dag", {"shout": "'HELLO'"}),
        (
            "carried",
            {"compute": "134", "doubled": "42"},
        ),  # 5! + 2 * 2 + 2 (the loop's last value) + len("/") + len("[1]") + 4
        ("uses_common", {"greet": "'hello'"}),
    ],
)
def test_the_imported_pipelines_run_without_the_dag_files(
    lifted: tuple[ImportOutcome, Path], pipeline_id: str, returned: dict[str, str]
) -> None:
    _outcome, root = lifted
    assert not (root / "dags").exists()
    result = run_spec(root, pipeline_id)
    assert result == {"states": dict.fromkeys(returned, "success"), "returned": returned}


def test_importing_one_dag_of_a_file_names_its_functions_the_same(tmp_path: Path) -> None:
    dags = write_folder(tmp_path / "dags", {"two_dags.py": LIFTED["two_dags.py"]})
    outcome = import_dags(dags, dag_id="second")
    assert callables(outcome) == {"second": {"extract": "two_dags_tasks:second__extract"}}
    (module,) = outcome.files
    assert "first" not in module.text and module.origin == str(dags / "two_dags.py")
    assert import_dags(dags, dag_id="second").files == outcome.files  # the same folder, the same module


def test_what_cannot_be_lifted_is_refused_with_file_line_and_what_to_do(tmp_path: Path) -> None:
    dags = write_folder(tmp_path / "dags", REFUSED)
    outcome = import_dags(dags)
    assert not outcome.imported and not outcome.files  # a refused DAG leaves nothing in a lifted module
    refused = {r.subject: r for r in outcome.refused}
    closure = refused["DAG 'closure'"]
    assert closure.reason == (
        f"task count: its callable count ({dags / 'closure.py'}:9) is a closure over values of the enclosing "
        "function closure() that are not constants: limit (a parameter of closure()); rows (computed at line 6). "
        "meta lifts the function into a module beside the specs, where those values do not exist"
    )
    assert closure.received == "a closure over limit, rows"
    assert closure.expected == (
        "pass them to the task as arguments (they become its kwargs), or move the function and the values to "
        "module level"
    )
    lam = refused["DAG 'lambda_dag'"]
    assert lam.reason.startswith(f"task one: its callable is a lambda ({dags / 'lambda_dag.py'}:5), not importable")
    assert lam.expected == "a def (at module level, or in the @dag function)"
    loop = refused["DAG 'loop_defaults'"]
    assert loop.reason == (
        f"task step_1: its callable step ({dags / 'loop_defaults.py'}:7) has defaults or decorators that read n "
        f"(bound at lines 4 of {dags / 'loop_defaults.py'}: a loop's functions each got its own value). The lifted "
        "function is defined once and would get the last value only"
    )
    wrapped = refused["DAG 'wrapped'"]
    assert wrapped.reason.startswith(
        f"task work: its callable work ({dags / 'wrapped.py'}:15) is wrapped by a decorator applied outside its def"
    ), wrapped.reason
    uses = refused["DAG 'uses_the_dag'"]
    assert uses.reason.startswith(
        f"task who: its callable who ({dags / 'uses_the_dag.py'}:6) uses what the DAG file builds: the_dag "
        f"({dags / 'uses_the_dag.py'}:3, a DAG)"
    ), uses.reason


def test_the_lifted_module_never_takes_the_name_of_a_module_of_the_dags_folder(tmp_path: Path) -> None:
    """``etl_tasks.py`` beside ``etl.py`` (a common layout): the lifted module is ``etl_lifted_tasks.py``."""
    files = {
        "etl_tasks.py": """
            def extract():
                return 7
        """,
        "etl.py": """
            from airflow.providers.standard.operators.python import PythonOperator
            from airflow.sdk import DAG, task
            from etl_tasks import extract

            with DAG("etl", schedule=None):

                @task
                def double(x):
                    return 2 * x

                double(PythonOperator(task_id="extract", python_callable=extract).output)
        """,
    }
    outcome = import_dags(write_folder(tmp_path / "dags", files))
    assert callables(outcome) == {"etl": {"extract": "etl_tasks:extract", "double": "etl_lifted_tasks:double"}}
    assert [f.path for f in outcome.files] == ["etl_lifted_tasks.py"]
    (etl,) = outcome.imported
    assert etl.notes == (
        "task extract: its callable etl_tasks:extract is in etl_tasks.py, a module of the dags folder (not the DAG "
        "file): deploy that module beside the specs",
    )


def test_a_refused_dag_takes_what_it_lifted_out_of_the_shared_module(tmp_path: Path) -> None:
    files = {
        "mixed.py": """
            from airflow.sdk import DAG, dag, task

            with DAG("good", schedule=None):

                @task
                def keep():
                    return 1

                keep()


            @dag(schedule=None)
            def bad():
                rows = list(range(3))

                @task
                def first():
                    return 1

                @task
                def second():
                    return len(rows)

                first() >> second()


            bad()
        """,
    }
    outcome = import_dags(write_folder(tmp_path / "dags", files))  # "bad" is mapped first: first() is lifted, then
    assert [r.subject for r in outcome.refused] == ["DAG 'bad'"]  # second() is refused
    assert callables(outcome) == {"good": {"keep": "mixed_tasks:keep"}}
    (module,) = outcome.files
    assert "def keep():" in module.text and "first" not in module.text and "rows" not in module.text
