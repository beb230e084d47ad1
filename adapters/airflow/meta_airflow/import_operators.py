"""Operators of common providers with a neutral form beyond import_tasks.py's core ones.

- EmailOperator (smtp provider) and Slack's webhook/API operators -> the built-in ``alert`` op (``op: alert``);
- SQLExecuteQueryOperator and its providers' subclasses -> ``sql`` (template files kept as files: import_sql.py);
- ``@task.bash`` -> shell, when the function returns a literal command (or an f-string of its arguments);
- ExternalTaskSensor -> the pipeline's ``depends_on`` (the sensor task leaves the graph);
- TriggerDagRunOperator -> recorded; when the triggered DAG is in the same import it gets ``depends_on`` on this
  pipeline and the trigger task leaves the graph (``link_triggers`` in importer.py), else it stays a passthrough;
- any other sensor -> an ``airflow_operator`` passthrough with a note, refused when its arguments hold callables.

``special_action`` returns None for every other operator (import_tasks.action_of maps it).
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any

from meta import ImportedFile
from meta_airflow.import_alerts import addresses
from meta_airflow.import_results import has_xcom, keyword_args, with_references
from meta_airflow.import_values import BASE_ARGS, ImportRefused, class_path, init_kwargs, seconds

EMAIL_OPERATORS = frozenset(
    {
        "airflow.providers.smtp.operators.smtp.EmailOperator",
        "airflow.operators.email.EmailOperator",  # Airflow 2's path (a shim in some installs)
    }
)
SLACK_WEBHOOK = "airflow.providers.slack.operators.slack_webhook.SlackWebhookOperator"
SLACK_API_POST = "airflow.providers.slack.operators.slack.SlackAPIPostOperator"
BASH_DECORATED = "airflow.providers.standard.decorators.bash._BashDecoratedOperator"
EXTERNAL_TASK_SENSOR = "airflow.providers.standard.sensors.external_task.ExternalTaskSensor"
TRIGGER_DAG_RUN = "airflow.providers.standard.operators.trigger_dagrun.TriggerDagRunOperator"
SQL_EXECUTE_QUERY = "airflow.providers.common.sql.operators.sql.SQLExecuteQueryOperator"
CHANNEL_NAME = re.compile(r"[^A-Za-z0-9_.@+\-]+")
# Airflow context values a @task.bash function may take as arguments that meta renders under the same name.
CONTEXT_NAMES = frozenset(
    {"ds", "ds_nodash", "ts", "ts_nodash", "run_id", "dag_id", "task_id", "logical_date", "try_number"}
    | {"data_interval_start", "data_interval_end"}
)


@dataclass
class DagExtras:
    """What mapping one DAG's operators found beyond its tasks: files the pipeline needs (SQL templates), pipelines
    it depends on (ExternalTaskSensors), tasks to take out of the graph (id -> why), DAGs it triggers
    (trigger task id -> DAG id), and alert routes from operators' own email settings."""

    files: list[ImportedFile] = field(default_factory=list)
    depends_on: list[dict[str, Any]] = field(default_factory=list)
    removed: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, str] = field(default_factory=dict)
    alerts: dict[str, list[str]] = field(default_factory=dict)
    sql_texts: dict[str, dict[str, str]] = field(default_factory=dict)  # folder -> its .sql files by text (a cache)


def is_a(op: Any, path: str) -> bool:
    """Whether ``op`` is an instance of the class at ``path`` (or a subclass), without importing that provider."""
    return any(f"{c.__module__}.{c.__qualname__}" == path for c in type(op).__mro__)


def is_sensor(op: Any) -> bool:
    return any(c.__name__ == "BaseSensorOperator" for c in type(op).__mro__)


def special_action(op: Any, dag: Any, module_names: dict[str, str], notes: list[str], extras: DagExtras) -> Any:
    """The action of an operator this module maps, or None."""
    from meta_airflow.import_sql import sql_action

    path = class_path(op)
    if path in EMAIL_OPERATORS or is_a(op, "airflow.providers.smtp.operators.smtp.EmailOperator"):
        return email_alert(op, notes)
    if is_a(op, SLACK_WEBHOOK) or is_a(op, SLACK_API_POST):
        return slack_alert(op, notes)
    if path == BASH_DECORATED:
        return bash_task(op, notes)
    if is_a(op, SQL_EXECUTE_QUERY) and not path.startswith("meta_airflow.") and not has_xcom(op.sql):
        return sql_action(op, dag, notes, extras)
    if is_a(op, EXTERNAL_TASK_SENSOR):
        found = external_dependency(op, notes)
        if found is not None:
            extras.depends_on.extend(found)
            extras.removed[op.task_id] = f"ExternalTaskSensor on {op.external_dag_id}"
            return {"kind": "noop"}
    if is_a(op, TRIGGER_DAG_RUN):
        triggered = trigger_target(op, notes)
        if triggered is not None:
            extras.triggers[op.task_id] = triggered
    if is_sensor(op):
        sensor_arguments_are_plain(op, dag)
        notes.append(
            f"task {op.task_id}: the sensor {type(op).__name__} waits in Airflow only (an airflow_operator "
            "passthrough); for other backends, wait with depends_on (another pipeline) or a python task that polls"
        )
    return None


# -------------------------------------------------------------------------------------------- alerts


def _text(op: Any, value: Any, what: str) -> str:
    text = with_references(value, op.task_id, what)
    if not isinstance(text, str):
        raise ImportRefused(
            f"task {op.task_id}: {what} {value!r:.80} is not text",
            task=op.task_id,
            received=f"{what}={value!r:.100}",
            expected=f"a string for the alert's {what}",
        )
    return text


def email_alert(op: Any, notes: list[str]) -> dict[str, Any]:
    """EmailOperator -> ``op: alert`` to ``email:<address>`` channels; the subject leads the message."""
    tid = op.task_id
    recipients = addresses(op.to) + addresses(getattr(op, "cc", None)) + addresses(getattr(op, "bcc", None))
    if not recipients or has_xcom(op.to):
        raise ImportRefused(
            f"task {tid}: EmailOperator without literal recipients",
            task=tid,
            received=f"to={op.to!r:.100}",
            expected="to= one or more literal addresses (each becomes the alert channel email:<address>)",
        )
    body = _text(op, op.html_content or "", "html_content")
    subject = _text(op, op.subject or "", "subject")
    message = "\n\n".join(part for part in (subject, body) if part) or f"{tid}"
    channels = [f"email:{a}" for a in recipients]
    notes.append(
        f"task {tid}: EmailOperator -> alert to {', '.join(channels)}; declare each channel's SMTP settings in "
        "channels.yaml (docs/operators.md#channels); the subject is the message's first line (the channel's "
        "'subject' setting sets the mail's)"
    )
    if getattr(op, "files", None) or getattr(op, "custom_headers", None) or getattr(op, "from_email", None):
        notes.append(f"task {tid}: EmailOperator files, custom_headers and from_email are not carried over")
    return {"kind": "op", "op": "alert", "with": _channels(channels, message)}


def slack_alert(op: Any, notes: list[str]) -> dict[str, Any]:
    """SlackWebhookOperator -> ``op: alert`` to ``slack:<connection id>`` (a meta slack channel is an incoming
    webhook, as the connection is); SlackAPIPostOperator -> ``slack:<its channel>``."""
    tid = op.task_id
    webhook = is_a(op, SLACK_WEBHOOK)
    if webhook:
        name = getattr(op, "slack_webhook_conn_id", None) or "slack_default"
        text = getattr(op, "message", None) or ""
    else:
        name = str(getattr(op, "channel", None) or "general").lstrip("#")
        text = getattr(op, "text", None) or ""
    channel = "slack:" + (CHANNEL_NAME.sub("-", str(name)).strip("-") or "default")
    message = _text(op, text, "message" if webhook else "text") or tid
    notes.append(
        f"task {tid}: {type(op).__name__} -> alert to {channel}; declare the channel's webhook url in channels.yaml "
        "(docs/operators.md#channels)"
    )
    if getattr(op, "blocks", None) or getattr(op, "attachments", None):
        notes.append(f"task {tid}: Slack blocks/attachments are not carried over (a meta alert is text)")
    return {"kind": "op", "op": "alert", "with": _channels([channel], message)}


def _channels(channels: list[str], message: str) -> dict[str, Any]:
    if len(channels) == 1:
        return {"channel": channels[0], "message": message}
    return {"channels": channels, "message": message}


# -------------------------------------------------------------------------------------------- @task.bash


def bash_task(op: Any, notes: list[str]) -> dict[str, Any]:
    """``@task.bash``: the command is the function's return value; imported when the body is ``return "<literal>"``
    or ``return f"..."`` of the function's arguments (their values, or results of other tasks, filled in)."""
    tid = op.task_id
    func = op.python_callable
    expression = _returned_expression(func, tid)
    kwargs = keyword_args(func, op.op_args, dict(op.op_kwargs or {}), tid)
    if isinstance(expression, ast.Constant) and isinstance(expression.value, str):
        command = expression.value
    elif isinstance(expression, ast.JoinedStr):
        command = "".join(_fstring_part(part, kwargs, tid) for part in expression.values)
    else:
        raise _bash_refusal(tid, f"returns {ast.unparse(expression)[:80]}")
    action: dict[str, Any] = {"kind": "shell", "command": command}
    if op.env:
        action["env"] = with_references(dict(op.env), tid, "env")
    if op.cwd:
        action["cwd"] = op.cwd
    if tuple(op.skip_on_exit_code or ()) != (99,):
        notes.append(f"task {tid}: skip_on_exit_code={op.skip_on_exit_code!r}: meta skips on exit code 99")
    return action


def _bash_refusal(tid: str, what: str) -> ImportRefused:
    return ImportRefused(
        f"task {tid}: its @task.bash function {what}; meta needs the command itself",
        task=tid,
        received=f"@task.bash function that {what}",
        expected='a body that is one `return "<command>"` (or an f-string of the arguments), or a BashOperator',
    )


def _returned_expression(func: Any, tid: str) -> ast.expr:
    try:
        source = textwrap.dedent(inspect.getsource(func))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError) as exc:
        raise _bash_refusal(tid, f"has no readable source ({type(exc).__name__})") from exc
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None)
    body = list(fn.body) if fn else []
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # a docstring
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        raise _bash_refusal(tid, "computes its command (more than one `return <text>` statement)")
    return body[0].value


def _fstring_part(part: ast.expr, kwargs: dict[str, Any], tid: str) -> str:
    if isinstance(part, ast.Constant):
        return str(part.value)
    if (
        isinstance(part, ast.FormattedValue)
        and isinstance(part.value, ast.Name)
        and part.value.id in kwargs
        and part.conversion == -1
        and part.format_spec is None
    ):
        value = with_references(kwargs[part.value.id], tid, "argument")
        if isinstance(value, str | int | float | bool):
            return str(value)
    if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name) and part.conversion == -1:
        name = part.value.id
        if name in CONTEXT_NAMES and part.format_spec is None:  # a run-context value Airflow passes: meta has it too
            return "{{ " + name + " }}"
        if name not in kwargs:
            raise _bash_refusal(tid, f"formats {{{name}}}, a run-context value meta has no template name for")
    raise _bash_refusal(tid, f"formats {ast.unparse(part)[:60]} (not one of its plain arguments)")


# -------------------------------------------------------------------------------------------- cross-DAG


def external_dependency(op: Any, notes: list[str]) -> list[dict[str, Any]] | None:
    """ExternalTaskSensor -> ``depends_on`` entries (align same: the same logical date, as the sensor waits for), or
    None when it waits for something depends_on cannot say (an offset date, a task group): then it stays a sensor."""
    tid = op.task_id
    if op.upstream_task_ids:
        notes.append(
            f"task {tid}: ExternalTaskSensor waits mid-run (after {', '.join(sorted(op.upstream_task_ids))}); "
            "depends_on waits before the run starts, so the sensor is kept"
        )
        return None
    if op.execution_delta is not None or op.execution_date_fn is not None:
        notes.append(
            f"task {tid}: ExternalTaskSensor waits for another logical date (execution_delta/execution_date_fn); "
            "depends_on aligns on the same one, so the sensor is kept"
        )
        return None
    if op.external_dag_id == op.dag_id:
        notes.append(f"task {tid}: ExternalTaskSensor on its own DAG has no depends_on form; the sensor is kept")
        return None
    if op.external_task_group_id:
        notes.append(f"task {tid}: ExternalTaskSensor on a task group has no depends_on form; the sensor is kept")
        return None
    given = init_kwargs(op)
    base: dict[str, Any] = {"pipeline": op.external_dag_id}
    if "timeout" in given and seconds(op.timeout) is not None:
        base["timeout"] = seconds(op.timeout)
    tasks = list(op.external_task_ids or ())
    entries = [{**base, "task": t} for t in tasks] if tasks else [base]
    waited = f"{op.external_dag_id}" + (f" (tasks {', '.join(tasks)})" if tasks else "")
    notes.append(
        f"task {tid}: ExternalTaskSensor on {waited} -> depends_on (align: same); the sensor task is removed and "
        "its downstream tasks start with the run (the control plane starts the run once the upstream succeeded)"
    )
    if given.get("allowed_states") or given.get("failed_states") or given.get("skipped_states"):
        notes.append(f"task {tid}: allowed/failed/skipped_states are not carried over (depends_on waits for success)")
    return entries


def trigger_target(op: Any, notes: list[str]) -> str | None:
    """The DAG a TriggerDagRunOperator starts, when that can become a ``depends_on`` of it (no conf, no waiting)."""
    tid = op.task_id
    given = init_kwargs(op)
    if given.get("wait_for_completion") or given.get("conf") or has_xcom(op.trigger_dag_id):
        notes.append(
            f"task {tid}: TriggerDagRunOperator with conf or wait_for_completion is kept as a passthrough "
            "(depends_on passes no conf and does not block the upstream)"
        )
        return None
    return str(op.trigger_dag_id)


def sensor_arguments_are_plain(op: Any, dag: Any) -> None:
    """A sensor kept as a passthrough: its own arguments must be data; a callable one (python_callable, a date
    function, a check) has no form outside the DAG file. (Callbacks and hooks are BaseOperator's: noted elsewhere.)"""

    inherited = dict(dag.default_args or {})
    found = {
        k: v
        for k, v in init_kwargs(op).items()
        if k not in BASE_ARGS and inherited.get(k) is not v and callable(v) and not isinstance(v, type)
    }
    if found:
        names = ", ".join(f"{k}={getattr(v, '__qualname__', type(v).__name__)}" for k, v in found.items())
        raise ImportRefused(
            f"task {op.task_id}: the sensor {type(op).__name__} takes callables ({', '.join(found)}); a sensor is "
            "kept as an airflow_operator passthrough, which holds plain data only",
            task=op.task_id,
            received=names,
            expected="a sensor with plain-data arguments, or a python task that polls (raise to retry, "
            "retries/retry_delay for the interval), or depends_on for another pipeline",
        )
