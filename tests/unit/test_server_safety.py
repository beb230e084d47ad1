"""Two pipelines loaded and run at the same time in one process, on threads, do not see each other's state: where a
pipeline was defined (returned with the load, ``meta.authoring.build.Loaded``), the open DSL builders
(``meta.authoring.dsl``), the runtime secret providers (``meta.execution.secrets``) and the import roots that
replace ``sys.path`` edits (``meta.authoring.import_roots``). Barriers make the threads overlap at the points where
shared state would leak, so the tests fail deterministically if any of it became process-wide again.
"""

from __future__ import annotations

import json
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meta.authoring.dsl import noop, pipeline
from meta.authoring.import_roots import current_roots, import_roots
from meta.authoring.load import load_file_with_sources
from meta.builtin.local import LocalRunner
from meta.execution import secrets

WAIT = 20.0  # seconds a barrier waits before the test fails instead of hanging


def run_threads(*targets: Callable[[], Any]) -> list[Any]:
    """Run each target on its own thread; return their results, re-raising the first error."""
    results: list[Any] = [None] * len(targets)
    errors: list[BaseException] = []

    def runner(i: int, target: Callable[[], Any]) -> None:
        try:
            results[i] = target()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=runner, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT * 3)
    if errors:
        raise errors[0]
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return results


def test_dsl_builders_of_two_threads_stay_apart() -> None:
    barrier = threading.Barrier(2, timeout=WAIT)

    def build(pipeline_id: str) -> tuple[str, ...]:
        with pipeline(pipeline_id) as builder:
            barrier.wait()  # both blocks are open now: a process-wide stack would hold both builders
            first = noop(f"{pipeline_id}_1")
            barrier.wait()
            first >> noop(f"{pipeline_id}_2")
            barrier.wait()
        assert builder.pipeline is not None
        return builder.pipeline.task_ids

    assert run_threads(lambda: build("left"), lambda: build("right")) == [
        ("left_1", "left_2"),
        ("right_1", "right_2"),
    ]


class FixedProvider:
    """A backend's runtime provider that knows one secret."""

    name = "fixed"

    def __init__(self, value: str) -> None:
        self.value = value

    def get(self, name: str) -> str | None:
        return self.value if name == "TOKEN" else None


HELPER = """\
import json
from pathlib import Path

import meta_test_sync
from meta.authoring.import_roots import current_roots


def record(token, out):
    meta_test_sync.barrier.wait(timeout=20)  # both runs' tasks are running now
    Path(out).write_text(json.dumps({"token": token, "roots": list(current_roots()), "module": __name__}))
"""


@pytest.fixture
def sync(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A module both pipelines' helpers import, holding the barrier their tasks meet at."""
    module = types.ModuleType("meta_test_sync")
    module.barrier = threading.Barrier(2, timeout=WAIT)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "meta_test_sync", module)
    for name in ("helper_yaml", "helper_dsl"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    return module


def test_yaml_and_dsl_pipelines_loaded_and_run_concurrently(
    tmp_path: Path, sync: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("META_SECRET_TOKEN", raising=False)
    yaml_dir, dsl_dir = tmp_path / "yaml_specs", tmp_path / "dsl_specs"
    yaml_dir.mkdir()
    dsl_dir.mkdir()
    (yaml_dir / "helper_yaml.py").write_text(HELPER)
    (dsl_dir / "helper_dsl.py").write_text(HELPER)
    yaml_out, dsl_out = tmp_path / "yaml.json", tmp_path / "dsl.json"
    # The same pipeline id in both: each load must say where *its* pipeline was defined.
    (yaml_dir / "shared.yaml").write_text(
        "pipeline: shared\ntasks:\n  record:\n    python: helper_yaml:record\n"
        f"    kwargs: {{token: '${{secret:TOKEN}}', out: '{yaml_out}'}}\n"
    )
    (dsl_dir / "shared.py").write_text(
        "import helper_dsl  # beside the spec: found through the load's import root, not sys.path\n"
        "from meta.dsl import pipeline, python_task\n\n"
        "with pipeline('shared'):\n"
        "    python_task('record', helper_dsl.record,\n"
        f"                kwargs={{'token': '${{secret:TOKEN}}', 'out': {str(dsl_out)!r}}})\n"
    )
    path_before, roots_before = list(sys.path), current_roots()
    loaded_barrier = threading.Barrier(2, timeout=WAIT)

    def load_and_run(spec: Path, folder: Path, token: str) -> tuple[Any, str]:
        with secrets.runtime_provider(FixedProvider(token)), import_roots([folder]):
            loaded = load_file_with_sources(spec)
            loaded_barrier.wait()  # both pipelines are loaded before either reads where it came from
            [p] = loaded.pipelines
            outcome = LocalRunner(home=folder / "state").run(p)
            return loaded.source_of("shared"), str(outcome.result.state)

    yaml_result, dsl_result = run_threads(
        lambda: load_and_run(yaml_dir / "shared.yaml", yaml_dir, "token-for-yaml"),
        lambda: load_and_run(dsl_dir / "shared.py", dsl_dir, "token-for-dsl"),
    )
    assert yaml_result == ((str(yaml_dir / "shared.yaml"), 1), "success")
    assert dsl_result == ((str((dsl_dir / "shared.py").resolve()), 4), "success")
    # Each task saw its own run's secret provider and import root, on the runner's worker thread.
    assert json.loads(yaml_out.read_text()) == {
        "token": "token-for-yaml",
        "roots": [str(yaml_dir.resolve())],
        "module": "helper_yaml",
    }
    assert json.loads(dsl_out.read_text()) == {
        "token": "token-for-dsl",
        "roots": [str(dsl_dir.resolve())],
        "module": "helper_dsl",
    }
    # Nothing leaked into the process: no path entries, no providers or roots outside the blocks.
    assert sys.path == path_before
    assert secrets.runtime_providers() == ()
    assert current_roots() == roots_before


def test_runtime_providers_of_two_threads_stay_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("META_SECRET_TOKEN", raising=False)
    barrier = threading.Barrier(2, timeout=WAIT)

    def resolve(token: str) -> list[str]:
        seen = []
        with secrets.runtime_provider(FixedProvider(token)):
            barrier.wait()  # both providers are pushed now
            seen.append(secrets.resolve("${secret:TOKEN}"))
            barrier.wait()
        seen.append(str(len(secrets.runtime_providers())))
        return seen

    assert run_threads(lambda: resolve("first-token"), lambda: resolve("second-token")) == [
        ["first-token", "0"],
        ["second-token", "0"],
    ]


def test_the_meta_command_finds_callables_beside_the_spec_only_while_it_runs(
    tmp_path: Path, meta_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from meta.cli import cli

    specs = tmp_path / "specs"
    (specs / "beside_jobs").mkdir(parents=True)
    (specs / "beside_jobs" / "__init__.py").write_text("")
    out = tmp_path / "out.txt"
    (specs / "beside_jobs" / "work.py").write_text(
        f"def run():\n    open({str(out)!r}, 'w').write('ran')\n"  # runs on a worker thread of the run loop
    )
    (specs / "p.yaml").write_text("pipeline: beside\ntasks:\n  a: {python: 'beside_jobs.work:run'}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "beside_jobs", raising=False)
    monkeypatch.delitem(sys.modules, "beside_jobs.work", raising=False)
    path_before, roots_before = list(sys.path), current_roots()
    result = CliRunner().invoke(cli, ["run", str(specs / "p.yaml")])
    assert result.exit_code == 0, result.output
    assert out.read_text() == "ran"
    assert sys.path == path_before and current_roots() == roots_before  # nothing outlives the command
