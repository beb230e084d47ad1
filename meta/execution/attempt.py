"""Backend-neutral execution of ONE task attempt; the local runner and the Prefect adapter both call it.

``execute_task`` never raises for task problems: whatever happens becomes an ``AttemptResult`` (success, failed or
skipped, plus the branch targets and an error message). Semantics follow Airflow:

* shell: ``bash -c`` like BashOperator; exit 0 success, exit 99 skipped, anything else failed. The command runs in
  its own session, so a timeout kills the whole process tree (SIGTERM, then SIGKILL after ``KILL_GRACE_SECONDS``).
* python / branch: ``module:function`` called with its kwargs plus the run-context names its signature asks for
  (all of them when it takes ``**kwargs``). Raising ``meta.spec.errors.TaskSkipped`` ends the task skipped. Without a
  timeout the call runs in-process (fast); with one it runs in a forked child that is killed on timeout.
* sql: the rendered statements run in one transaction on the named connection (``meta.execution.connections``).
* op: ``meta.plugins.manager.get_op(name).run(OpContext, **with)``.
* airflow_operator: only the airflow backend runs it; elsewhere the attempt fails saying so.

Results (``meta.semantics.results``): a successful python task's return value, or a shell task's last line of output
(BashOperator's XCom), checked by ``meta.execution.results.checked_result``, is the attempt's ``result``. The
executor passes the results a task refers to as ``inputs`` and, for one instance of a mapped task, its mapped kwargs.
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, assert_never

from meta.execution.callables import call_kwargs, resolve_callable
from meta.execution.capture import capture_stdout
from meta.execution.results import ResultRefused, checked_result
from meta.semantics.context import RunContext, render
from meta.semantics.results import UNMAPPED, mappable_problem, render_with_results, template_tasks
from meta.spec.errors import MetaError, TaskSkipped
from meta.spec.model import (
    AirflowOperatorAction,
    BranchAction,
    NoopAction,
    OpAction,
    Pipeline,
    PythonAction,
    ShellAction,
    SqlAction,
    Task,
)
from meta.spec.states import TaskState

SKIP_EXIT_CODE = 99  # BashOperator's skip_on_exit_code default
KILL_GRACE_SECONDS = 3.0

# Process groups of the task processes running now, so an interrupted runner can stop them (they run in their own
# sessions, so Ctrl-C in the terminal does not reach them).
_active_groups: set[int] = set()
_active_lock = threading.Lock()


def _track(pgid: int, active: bool) -> None:
    with _active_lock:
        (_active_groups.add if active else _active_groups.discard)(pgid)


def terminate_active_tasks() -> None:
    """SIGTERM every task process group started by this process that is still running (then SIGKILL)."""
    with _active_lock:
        groups = list(_active_groups)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pgid in groups:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class AttemptResult:
    state: TaskState  # SUCCESS, FAILED or SKIPPED
    follow: tuple[str, ...] | None = None  # branch tasks only: the downstream task ids to follow
    error: str | None = None
    result: Any = None  # the checked JSON result (python / shell tasks that succeeded)
    has_result: bool = False  # a python task returning None has no result (Airflow pushes no XCom)


@dataclass(frozen=True)
class TaskInputs:
    """What an attempt receives from the rest of the run: the results it refers to (task id -> value, a list for a
    mapped task) and, for an instance of a mapped task, its map index and mapped kwargs."""

    results: dict[str, Any]
    map_index: int = UNMAPPED
    mapped_kwargs: dict[str, Any] | None = None
    must_return_a_list: bool = False  # a task maps over this one's result (``RunResults.must_return_a_list``)


NO_INPUTS = TaskInputs({})


def execute_task(
    pipeline: Pipeline,
    task: Task,
    ctx: RunContext,
    try_number: int = 1,
    log_path: Path | None = None,
    inputs: TaskInputs = NO_INPUTS,
) -> AttemptResult:
    """Run one attempt of ``task``; output and the outcome go to ``log_path`` (stdout when None)."""
    settings = pipeline.settings_for(task)
    timeout = settings.timeout.total_seconds() if settings.timeout is not None else None
    variables = task_variables(task, ctx, try_number)
    if inputs.results:
        variables["tasks"] = template_tasks(inputs.results)
    log: TextIO
    if log_path is not None:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "a+", buffering=1, encoding="utf-8")
        except OSError as exc:
            return AttemptResult(TaskState.FAILED, error=f"cannot write the attempt log {log_path}: {exc}")
    else:
        log = sys.stdout
    started = time.monotonic()
    try:
        where = f" map_index={inputs.map_index}" if inputs.map_index != UNMAPPED else ""
        log.write(
            f"[{_now()}] pipeline={pipeline.id} task={task.id}{where} run_id={ctx.run_id} try={try_number} "
            f"kind={task.kind}\n"
        )
        result = _dispatch(pipeline, task, ctx, try_number, variables, timeout, log, inputs)
        if result.has_result:
            result = _checked(task, result, inputs.must_return_a_list)
        if result.error:  # a resolved secret must never reach a log, the history or the terminal
            result = AttemptResult(result.state, result.follow, redact(result.error), result.result, result.has_result)
        log.write(
            f"[{_now()}] {result.state}"
            + (f": {result.error}" if result.error else "")
            + (f" (follow {list(result.follow)})" if result.follow is not None else "")
            + f" after {time.monotonic() - started:.3f}s\n"
        )
        return result
    finally:
        if log is not sys.stdout:
            log.close()


def _checked(task: Task, result: AttemptResult, must_return_a_list: bool) -> AttemptResult:
    """The attempt fails when its result cannot be kept, or cannot be mapped over by the task that maps over it
    (as Airflow fails the unmapped task that pushes such an XCom; a mapped task's results are mapped over as the
    list of them)."""
    try:
        value = checked_result(task.id, result.result)
    except ResultRefused as exc:
        return AttemptResult(TaskState.FAILED, error=str(exc))
    if must_return_a_list:
        problem = mappable_problem(value)
        if problem:
            return AttemptResult(TaskState.FAILED, error=f"task {task.id!r} {problem}")
    return AttemptResult(result.state, result.follow, result.error, value, True)


def task_variables(task: Task, ctx: RunContext, try_number: int) -> dict[str, Any]:
    """Template variables of one attempt; task-level params fill names the run does not set."""
    variables = ctx.template_vars(task.id, try_number)
    if task.params:
        variables["params"] = {**task.params, **variables["params"]}
    return variables


def resolve_secrets(value: Any) -> Any:
    """Replace ``${secret:NAME}`` references (shell env, python kwargs, sql parameters) at run time."""
    from meta.execution import secrets

    return secrets.resolve(value) if secrets.has_reference(value) else value


def redact(text: str) -> str:
    from meta.execution import secrets

    return secrets.redact(text)


def _print_traceback() -> None:
    print(redact(traceback.format_exc()), end="")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dispatch(
    pipeline: Pipeline,
    task: Task,
    ctx: RunContext,
    try_number: int,
    variables: dict[str, Any],
    timeout: float | None,
    log: TextIO,
    inputs: TaskInputs,
) -> AttemptResult:
    # Exhaustive over meta.spec.model.Action: a new task kind fails mypy here (assert_never) until it is handled.
    action = task.action
    match action:
        case NoopAction():
            return AttemptResult(TaskState.SUCCESS)
        case ShellAction():
            return _run_shell(action, task, ctx, try_number, variables, timeout, log, inputs)
        case AirflowOperatorAction():
            return AttemptResult(
                TaskState.FAILED,
                error=f"task {task.id!r} uses the Airflow operator {action.operator}, which only the airflow backend "
                f"can run (received backend {ctx.backend!r})",
            )
        case PythonAction() | BranchAction():
            try:
                func = resolve_callable(action.callable)
            except Exception as exc:  # import problems are the task's failure, reported clearly
                return AttemptResult(TaskState.FAILED, error=f"cannot import {action.callable!r}: {exc}")
            kwargs = render_with_results(dict(action.kwargs), variables, inputs.results)
            for name, value in (inputs.mapped_kwargs or {}).items():
                # Elements of a literal list are templates (Airflow renders them); results are never rendered again.
                literal = isinstance(task.map.get(name), list | tuple)
                kwargs[name] = render_with_results(value, variables, inputs.results) if literal else value
            allowed = pipeline.downstream_of(task.id) if isinstance(action, BranchAction) else None
            target = action.callable

            def call() -> AttemptResult:
                try:
                    resolved = resolve_secrets(kwargs)
                except MetaError as exc:  # a missing secret is the task's failure, named clearly
                    return AttemptResult(TaskState.FAILED, error=str(exc))
                return _call_python(func, resolved, variables, allowed, target)

            return _in_process_or_child(call, task, ctx, try_number, timeout, log)
        case SqlAction():
            statement = render(action.statement, variables)
            parameters = render_with_results(dict(action.parameters), variables, inputs.results)
            conn = action.conn

            def query() -> AttemptResult:
                from meta.execution.sql import run_sql

                count = run_sql(conn, statement, resolve_secrets(parameters), sys.stdout)
                if not count:
                    return AttemptResult(
                        TaskState.FAILED, error="the sql statement holds nothing to run (only comments?)"
                    )
                return AttemptResult(TaskState.SUCCESS)

            return _in_process_or_child(_guard(query), task, ctx, try_number, timeout, log)
        case OpAction():
            return _in_process_or_child(
                _guard(_op_work(action, task, ctx, try_number, variables, inputs)), task, ctx, try_number, timeout, log
            )
        case _:
            assert_never(action)


# ------------------------------------------------------------------------------------------------ python


def _call_python(
    func: Callable[..., Any],
    kwargs: dict[str, Any],
    context: dict[str, Any],
    allowed_follow: tuple[str, ...] | None,
    ref: str,
) -> AttemptResult:
    try:
        value = func(**call_kwargs(func, kwargs, context))
    except TaskSkipped as exc:
        return AttemptResult(TaskState.SKIPPED, error=str(exc) or None)
    except SystemExit as exc:  # must not end the runner (in-process) nor look like an internal error
        return AttemptResult(TaskState.FAILED, error=f"{ref} called sys.exit({exc.code!r})")
    except Exception as exc:
        _print_traceback()
        return AttemptResult(TaskState.FAILED, error=f"{ref} raised {type(exc).__name__}: {exc}")
    if value is not None:
        text = repr(value)
        print(f"returned: {text if len(text) <= 500 else text[:497] + '...'}")
    if allowed_follow is None:
        return AttemptResult(TaskState.SUCCESS, result=value, has_result=value is not None)
    return _branch_result(value, allowed_follow, ref)


def _branch_result(value: Any, allowed: tuple[str, ...], ref: str) -> AttemptResult:
    if value is None:
        follow: tuple[str, ...] = ()
    elif isinstance(value, str):
        follow = (value,)
    elif isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, str) for v in value):
        follow = tuple(value)
    else:
        return AttemptResult(
            TaskState.FAILED,
            error=f"branch callable {ref} returned {value!r}; expected a task id or a list of task ids "
            f"among its direct downstream tasks {list(allowed)}",
        )
    unknown = [t for t in follow if t not in allowed]
    if unknown:
        return AttemptResult(
            TaskState.FAILED,
            error=f"branch callable {ref} returned {unknown} which {'is' if len(unknown) == 1 else 'are'} not a direct "
            f"downstream task; allowed: {list(allowed)}",
        )
    return AttemptResult(TaskState.SUCCESS, follow=tuple(dict.fromkeys(follow)))


# ------------------------------------------------------------------------------------------------ op, sql


def _op_work(
    action: OpAction, task: Task, ctx: RunContext, try_number: int, variables: dict[str, Any], inputs: TaskInputs
) -> Callable[[], AttemptResult]:
    def work() -> AttemptResult:
        from meta.plugins.manager import get_op
        from meta.plugins.ops import OpContext

        op = get_op(action.op)
        args = render_with_results(dict(action.with_), variables, inputs.results)
        op.run(OpContext(run=ctx, task_id=task.id, try_number=try_number, log=_stdout_logger(task.id)), **args)
        return AttemptResult(TaskState.SUCCESS)

    return work


def _stdout_logger(task_id: str) -> logging.Logger:
    """A private logger (not registered globally) writing to whatever stdout means for this attempt."""
    logger = logging.Logger(f"meta.op.{task_id}", logging.INFO)
    handler = logging.StreamHandler(_CurrentStdout())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger


class _CurrentStdout:
    """Resolves sys.stdout at write time, so the thread's capture (or the forked child's log) is honoured."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _guard(work: Callable[[], AttemptResult]) -> Callable[[], AttemptResult]:
    def guarded() -> AttemptResult:
        try:
            return work()
        except TaskSkipped as exc:
            return AttemptResult(TaskState.SKIPPED, error=str(exc) or None)
        except Exception as exc:
            _print_traceback()
            return AttemptResult(TaskState.FAILED, error=f"{type(exc).__name__}: {exc}")

    return guarded


# ------------------------------------------------------------------------------------------------ where it runs


def _in_process_or_child(
    work: Callable[[], AttemptResult],
    task: Task,
    ctx: RunContext,
    try_number: int,
    timeout: float | None,
    log: TextIO,
) -> AttemptResult:
    if timeout is None:
        with capture_stdout(log):
            return work()
    log.flush()
    return _run_forked(work, ctx.env(task.id, try_number), timeout, log)


def _run_forked(work: Callable[[], AttemptResult], env: dict[str, str], timeout: float, log: TextIO) -> AttemptResult:
    """Run ``work`` in a forked child in its own session; kill the child's whole process group on timeout."""
    read_fd, write_fd = os.pipe()
    log_fd = _fileno(log)
    pid = os.fork()
    if pid == 0:  # child: never return into the parent's code
        status = 1
        try:
            os.close(read_fd)
            os.setsid()
            if log_fd is not None:
                os.dup2(log_fd, 1)
                os.dup2(log_fd, 2)
            sys.stdout = sys.stderr = open(1, "w", buffering=1, closefd=False)
            os.environ.update(env)
            result = work()
            try:
                shown = checked_result("", result.result) if result.has_result else None
            except ResultRefused:  # refused again, with the task's name, by the parent (execute_task)
                shown = None
                result = AttemptResult(result.state, result.follow, result.error, _UNSENDABLE, True)
            payload = json.dumps(
                {
                    "state": str(result.state),
                    "follow": result.follow,
                    "error": result.error,
                    "result": shown,
                    "has_result": result.has_result,
                    "unsendable": result.result is _UNSENDABLE,
                }
            )
            os.write(write_fd, payload.encode())
            status = 0
        finally:
            try:
                sys.stdout.flush()
            finally:
                os._exit(status)
    os.close(write_fd)
    _track(pid, True)
    try:
        return _wait_forked(pid, read_fd, timeout)
    finally:
        _track(pid, False)


def _wait_forked(pid: int, read_fd: int, timeout: float) -> AttemptResult:
    deadline = time.monotonic() + timeout
    chunks: list[bytes] = []
    timed_out = False
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
    if timed_out:
        kill_process_group(pid, lambda: _reap(pid))
        return AttemptResult(TaskState.FAILED, error=f"timed out after {_seconds(timeout)}; killed its process tree")
    _, status = os.waitpid(pid, 0)
    if not chunks:
        return AttemptResult(TaskState.FAILED, error=f"the task process died without a result (wait status {status})")
    data = json.loads(b"".join(chunks))
    follow = tuple(data["follow"]) if data["follow"] is not None else None
    value = _UNSENDABLE if data.get("unsendable") else data.get("result")
    return AttemptResult(TaskState(data["state"]), follow, data["error"], value, bool(data.get("has_result")))


class _Unsendable:
    """A result the forked child could not send as JSON; the parent's check refuses it with the task named."""

    def __repr__(self) -> str:
        return "<a value that is not JSON>"


_UNSENDABLE = _Unsendable()


def _fileno(stream: TextIO) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is both OSError and ValueError
        return None


def _reap(pid: int) -> bool:
    """True once the child has exited (reaping it so it does not linger as a zombie)."""
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def kill_process_group(pgid: int, child_exited: Callable[[], bool], grace: float | None = None) -> None:
    """SIGTERM the whole group, wait up to ``grace`` for it to empty, then SIGKILL whatever is left."""
    grace = KILL_GRACE_SECONDS if grace is None else grace
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        child_exited()
        if not _group_alive(pgid):
            break
        time.sleep(0.02)
    else:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while not child_exited():
        time.sleep(0.01)


def _group_alive(pgid: int) -> bool:
    """Does the group still have a live (non-zombie) member? Zombies count as gone: in containers nobody may
    reap orphaned grandchildren, yet they no longer run."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a member changed user; treat as alive
        return True
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - non-Linux: trust kill(0)
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command: state, ppid, pgrp, ...
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def _output_since(out: Any, start: int) -> str:
    out.flush()
    with open(out.fileno(), encoding="utf-8", errors="replace", closefd=False) as reader:
        reader.seek(start)
        return reader.read()


def _last_line(output: str) -> str:
    """BashOperator's result: the last line of the output (stderr included), trailing whitespace stripped; "" when
    there is none."""
    lines = output.splitlines()
    return lines[-1].rstrip() if lines else ""


def _seconds(value: float) -> str:
    return f"{value:g}s"


# ------------------------------------------------------------------------------------------------ shell


def _run_shell(
    action: ShellAction,
    task: Task,
    ctx: RunContext,
    try_number: int,
    variables: dict[str, Any],
    timeout: float | None,
    log: TextIO,
    inputs: TaskInputs,
) -> AttemptResult:
    command = render(action.command, variables)
    try:
        own_env = resolve_secrets(render_with_results(dict(action.env), variables, inputs.results))
    except MetaError as exc:
        return AttemptResult(TaskState.FAILED, error=str(exc))
    not_text = {k: v for k, v in own_env.items() if not isinstance(v, str)}
    if not_text:
        name, value = next(iter(not_text.items()))
        return AttemptResult(
            TaskState.FAILED,
            error=f"env {name} received {type(value).__name__} {str(value)[:80]!r}; environment values are text: "
            "use the result inside text, e.g. '{{ tasks.ID.result | tojson }}'",
        )
    env = {**os.environ, **ctx.env(task.id, try_number), **own_env}
    cwd = render(action.cwd, variables) if action.cwd else None
    log.write(f"$ {command}\n")
    log.flush()
    # The command writes to the log file itself (or to a scratch file copied to the log afterwards), from this
    # offset on: its last line is the task's result, as BashOperator pushes it.
    out: Any = log if _fileno(log) is not None and log is not sys.stdout else tempfile.TemporaryFile("w+")
    start = out.tell()
    try:
        proc = subprocess.Popen(
            ["bash", "-c", command],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a timeout kills the whole tree
        )
    except OSError as exc:
        return AttemptResult(TaskState.FAILED, error=f"cannot start bash: {exc}")
    _track(proc.pid, True)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_group(proc.pid, lambda: proc.poll() is not None)
        return AttemptResult(
            TaskState.FAILED, error=f"timed out after {_seconds(timeout or 0)}; killed its process tree"
        )
    finally:
        _track(proc.pid, False)
        output = _output_since(out, start)
        if out is not log:
            log.write(output)
            out.close()
    if code == 0:
        return AttemptResult(TaskState.SUCCESS, result=_last_line(output), has_result=True)
    if code == SKIP_EXIT_CODE:
        return AttemptResult(TaskState.SKIPPED, error=f"exit code {SKIP_EXIT_CODE}: skipped")
    return AttemptResult(TaskState.FAILED, error=f"command exited with code {code}")
