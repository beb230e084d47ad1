"""meta: define pipelines once, run them on Airflow, Prefect or the embedded runner with identical semantics.

This module is meta's public surface: what users and the adapters (meta-airflow, meta-prefect) import, as
``from meta import Pipeline, execute_task``. Names load lazily on first use (like ``airflow.sdk``), so
``import meta`` stays cheap and a backend pays only for what it touches. Everything under ``meta.<layer>`` is
internal and may move; ``meta.dsl`` is the public Python DSL.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> "module:attribute" ("module:" for a module itself)
_PUBLIC: dict[str, str] = {
    # the model
    "Pipeline": "meta.spec.model:Pipeline",
    "Task": "meta.spec.model:Task",
    "TaskSettings": "meta.spec.model:TaskSettings",
    "Param": "meta.spec.model:Param",
    "AirflowOperatorAction": "meta.spec.model:AirflowOperatorAction",
    "BranchAction": "meta.spec.model:BranchAction",
    "OpAction": "meta.spec.model:OpAction",
    "CronSchedule": "meta.spec.model:CronSchedule",
    "CHANNEL_PATTERN": "meta.spec.model:CHANNEL_PATTERN",
    "DatasetSchedule": "meta.spec.model:DatasetSchedule",
    "IntervalSchedule": "meta.spec.model:IntervalSchedule",
    "Dependency": "meta.spec.model:Dependency",
    "CALLABLE_PATTERN": "meta.spec.model:CALLABLE_PATTERN",
    "TriggerRule": "meta.spec.states:TriggerRule",
    "TaskState": "meta.spec.states:TaskState",
    "RunState": "meta.spec.states:RunState",
    "RunResult": "meta.spec.results:RunResult",
    "TaskResult": "meta.spec.results:TaskResult",
    "topological_order": "meta.spec.dag:topological_order",
    # results and mapping
    "MAX_MAP_LENGTH": "meta.spec.model:MAX_MAP_LENGTH",
    "RESULT_KINDS": "meta.spec.model:RESULT_KINDS",
    "Reference": "meta.spec.references:Reference",
    "whole_reference": "meta.spec.references:whole_reference",
    "referenced_results": "meta.spec.references:referenced_results",
    "replace_results": "meta.spec.references:replace_results",
    "result_expression": "meta.spec.references:result_expression",
    "UNMAPPED": "meta.semantics.results:UNMAPPED",
    "RunResults": "meta.semantics.results:RunResults",
    "ExpansionError": "meta.semantics.results:ExpansionError",
    "expand_map": "meta.semantics.results:expand_map",
    "mapped_sources": "meta.semantics.results:mapped_sources",
    "mappable_problem": "meta.semantics.results:mappable_problem",
    "template_tasks": "meta.semantics.results:template_tasks",
    "checked_result": "meta.execution.results:checked_result",
    "ResultRefused": "meta.execution.results:ResultRefused",
    "MAX_RESULT_BYTES": "meta.execution.results:MAX_RESULT_BYTES",
    # errors
    "MetaError": "meta.spec.errors:MetaError",
    "CompileError": "meta.spec.errors:CompileError",
    "PluginError": "meta.spec.errors:PluginError",
    "ValidationFailed": "meta.spec.errors:ValidationFailed",
    "Problem": "meta.spec.errors:Problem",
    "TaskFailed": "meta.spec.errors:TaskFailed",
    "TaskSkipped": "meta.spec.errors:TaskSkipped",
    # loading pipelines
    "load_file": "meta.authoring.load:load_file",
    "load_paths": "meta.authoring.load:load_paths",
    "loads": "meta.authoring.load:loads",
    # Airflow's semantics
    "RunContext": "meta.semantics.context:RunContext",
    "Decision": "meta.semantics.rules:Decision",
    "evaluate_trigger_rule": "meta.semantics.rules:evaluate_trigger_rule",
    "run_state": "meta.semantics.rules:run_state",
    "Scheduler": "meta.semantics.scheduler:Scheduler",
    "SchedulerStep": "meta.semantics.scheduler:SchedulerStep",
    "Completion": "meta.semantics.scheduler:Completion",
    "delay_before_retry": "meta.semantics.retries:delay_before_retry",
    "retry_jitter_key": "meta.semantics.retries:retry_jitter_key",
    "resolve_params": "meta.semantics.params:resolve_params",
    "RunRequest": "meta.semantics.request:RunRequest",
    "check_run_id": "meta.semantics.request:check_run_id",
    "airflow_native_sla": "meta.semantics.sla.native:airflow_native_sla",
    "schedule_driven_by_control_plane": "meta.semantics.dependencies:schedule_driven_by_control_plane",
    "daily_tick": "meta.semantics.sla.native:daily_tick",
    "default_run_id": "meta.semantics.request:default_run_id",
    # plugins
    "hookimpl": "meta.plugins.hookspecs:hookimpl",
    "Target": "meta.plugins.targets:Target",
    "Importer": "meta.plugins.targets:Importer",
    "ImportOutcome": "meta.plugins.importing:ImportOutcome",
    "ImportedPipeline": "meta.plugins.importing:ImportedPipeline",
    "ImportedFile": "meta.plugins.importing:ImportedFile",
    "ImportRefusal": "meta.plugins.importing:ImportRefusal",
    "OpType": "meta.plugins.ops:OpType",
    "OpContext": "meta.plugins.ops:OpContext",
    "ProgressCallback": "meta.plugins.targets:ProgressCallback",
    "RunReport": "meta.plugins.targets:RunReport",
    "DeployAction": "meta.plugins.targets:DeployAction",
    "PlannedDeploy": "meta.plugins.targets:PlannedDeploy",
    "BackendOption": "meta.plugins.commands:BackendOption",
    "get_target": "meta.plugins.manager:get_target",
    "get_op": "meta.plugins.manager:get_op",
    "write_generated": "meta.plugins.codegen:write_generated",
    # running one task attempt
    "execute_task": "meta.execution.attempt:execute_task",
    "TaskInputs": "meta.execution.attempt:TaskInputs",
    "call_kwargs": "meta.execution.callables:call_kwargs",
    "resolve_callable": "meta.execution.callables:resolve_callable",
    "connection_url": "meta.execution.connections:connection_url",
    "secrets": "meta.execution.secrets:",
    "has_reference": "meta.execution.secrets:has_reference",
    # built-in backend and operators
    "LocalRunner": "meta.builtin.local:LocalRunner",
    "run_table": "meta.builtin.local.report:run_table",
    "state_dir": "meta.settings:state_dir",
    "warehouse_load": "meta.builtin.operators.warehouse.load:load",
    "WarehouseLoadOptions": "meta.builtin.operators.warehouse:WarehouseLoadOptions",
    "send_alert": "meta.builtin.operators.alerts:send_alert",
    "run_alert_op": "meta.builtin.operators.alerts:run_alert_op",
    "AlertOptions": "meta.builtin.operators.alerts:AlertOptions",
    "AlertEvent": "meta.builtin.operators.alerts.event:AlertEvent",
}

__all__ = ["__version__", *sorted(_PUBLIC)]

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and editors
    from meta.authoring.load import (
        load_file as load_file,
    )
    from meta.authoring.load import (
        load_paths as load_paths,
    )
    from meta.authoring.load import (
        loads as loads,
    )
    from meta.builtin.local import (
        LocalRunner as LocalRunner,
    )
    from meta.builtin.local.report import (
        run_table as run_table,
    )
    from meta.builtin.operators.alerts import (
        AlertOptions as AlertOptions,
    )
    from meta.builtin.operators.alerts import (
        run_alert_op as run_alert_op,
    )
    from meta.builtin.operators.alerts import (
        send_alert as send_alert,
    )
    from meta.builtin.operators.alerts.event import (
        AlertEvent as AlertEvent,
    )
    from meta.builtin.operators.warehouse import (
        WarehouseLoadOptions as WarehouseLoadOptions,
    )
    from meta.builtin.operators.warehouse.load import (  # the function, not the package's submodule of that name
        load as warehouse_load,  # noqa: F401 - re-exported through __all__
    )
    from meta.execution import (
        secrets as secrets,
    )
    from meta.execution.attempt import (
        TaskInputs as TaskInputs,
    )
    from meta.execution.attempt import (
        execute_task as execute_task,
    )
    from meta.execution.callables import (
        call_kwargs as call_kwargs,
    )
    from meta.execution.callables import (
        resolve_callable as resolve_callable,
    )
    from meta.execution.connections import (
        connection_url as connection_url,
    )
    from meta.execution.results import (
        MAX_RESULT_BYTES as MAX_RESULT_BYTES,
    )
    from meta.execution.results import (
        ResultRefused as ResultRefused,
    )
    from meta.execution.results import (
        checked_result as checked_result,
    )
    from meta.execution.secrets import (
        has_reference as has_reference,
    )
    from meta.plugins.codegen import (
        write_generated as write_generated,
    )
    from meta.plugins.commands import (
        BackendOption as BackendOption,
    )
    from meta.plugins.hookspecs import (
        hookimpl as hookimpl,
    )
    from meta.plugins.importing import (
        ImportedFile as ImportedFile,
    )
    from meta.plugins.importing import (
        ImportedPipeline as ImportedPipeline,
    )
    from meta.plugins.importing import (
        ImportOutcome as ImportOutcome,
    )
    from meta.plugins.importing import (
        ImportRefusal as ImportRefusal,
    )
    from meta.plugins.manager import (
        get_op as get_op,
    )
    from meta.plugins.manager import (
        get_target as get_target,
    )
    from meta.plugins.ops import (
        OpContext as OpContext,
    )
    from meta.plugins.ops import (
        OpType as OpType,
    )
    from meta.plugins.targets import (
        DeployAction as DeployAction,
    )
    from meta.plugins.targets import (
        Importer as Importer,
    )
    from meta.plugins.targets import (
        PlannedDeploy as PlannedDeploy,
    )
    from meta.plugins.targets import (
        ProgressCallback as ProgressCallback,
    )
    from meta.plugins.targets import (
        RunReport as RunReport,
    )
    from meta.plugins.targets import (
        Target as Target,
    )
    from meta.semantics.context import (
        RunContext as RunContext,
    )
    from meta.semantics.dependencies import (
        schedule_driven_by_control_plane as schedule_driven_by_control_plane,
    )
    from meta.semantics.params import (
        resolve_params as resolve_params,
    )
    from meta.semantics.request import (
        RunRequest as RunRequest,
    )
    from meta.semantics.request import (
        check_run_id as check_run_id,
    )
    from meta.semantics.request import (
        default_run_id as default_run_id,
    )
    from meta.semantics.results import (
        UNMAPPED as UNMAPPED,
    )
    from meta.semantics.results import (
        ExpansionError as ExpansionError,
    )
    from meta.semantics.results import (
        RunResults as RunResults,
    )
    from meta.semantics.results import (
        expand_map as expand_map,
    )
    from meta.semantics.results import (
        mappable_problem as mappable_problem,
    )
    from meta.semantics.results import (
        mapped_sources as mapped_sources,
    )
    from meta.semantics.results import (
        template_tasks as template_tasks,
    )
    from meta.semantics.retries import (
        delay_before_retry as delay_before_retry,
    )
    from meta.semantics.retries import (
        retry_jitter_key as retry_jitter_key,
    )
    from meta.semantics.rules import (
        Decision as Decision,
    )
    from meta.semantics.rules import (
        evaluate_trigger_rule as evaluate_trigger_rule,
    )
    from meta.semantics.rules import (
        run_state as run_state,
    )
    from meta.semantics.scheduler import (
        Completion as Completion,
    )
    from meta.semantics.scheduler import (
        Scheduler as Scheduler,
    )
    from meta.semantics.scheduler import (
        SchedulerStep as SchedulerStep,
    )
    from meta.semantics.sla.native import (
        airflow_native_sla as airflow_native_sla,
    )
    from meta.semantics.sla.native import (
        daily_tick as daily_tick,
    )
    from meta.settings import (
        state_dir as state_dir,
    )
    from meta.spec.dag import (
        topological_order as topological_order,
    )
    from meta.spec.errors import (
        CompileError as CompileError,
    )
    from meta.spec.errors import (
        MetaError as MetaError,
    )
    from meta.spec.errors import (
        PluginError as PluginError,
    )
    from meta.spec.errors import (
        Problem as Problem,
    )
    from meta.spec.errors import (
        TaskFailed as TaskFailed,
    )
    from meta.spec.errors import (
        TaskSkipped as TaskSkipped,
    )
    from meta.spec.errors import (
        ValidationFailed as ValidationFailed,
    )
    from meta.spec.model import (
        CALLABLE_PATTERN as CALLABLE_PATTERN,
    )
    from meta.spec.model import (
        CHANNEL_PATTERN as CHANNEL_PATTERN,
    )
    from meta.spec.model import (
        MAX_MAP_LENGTH as MAX_MAP_LENGTH,
    )
    from meta.spec.model import (
        RESULT_KINDS as RESULT_KINDS,
    )
    from meta.spec.model import (
        AirflowOperatorAction as AirflowOperatorAction,
    )
    from meta.spec.model import (
        BranchAction as BranchAction,
    )
    from meta.spec.model import (
        CronSchedule as CronSchedule,
    )
    from meta.spec.model import (
        DatasetSchedule as DatasetSchedule,
    )
    from meta.spec.model import (
        Dependency as Dependency,
    )
    from meta.spec.model import (
        IntervalSchedule as IntervalSchedule,
    )
    from meta.spec.model import (
        OpAction as OpAction,
    )
    from meta.spec.model import (
        Param as Param,
    )
    from meta.spec.model import (
        Pipeline as Pipeline,
    )
    from meta.spec.model import (
        Task as Task,
    )
    from meta.spec.model import (
        TaskSettings as TaskSettings,
    )
    from meta.spec.references import (
        Reference as Reference,
    )
    from meta.spec.references import (
        referenced_results as referenced_results,
    )
    from meta.spec.references import (
        replace_results as replace_results,
    )
    from meta.spec.references import (
        result_expression as result_expression,
    )
    from meta.spec.references import (
        whole_reference as whole_reference,
    )
    from meta.spec.results import (
        RunResult as RunResult,
    )
    from meta.spec.results import (
        TaskResult as TaskResult,
    )
    from meta.spec.states import (
        RunState as RunState,
    )
    from meta.spec.states import (
        TaskState as TaskState,
    )
    from meta.spec.states import (
        TriggerRule as TriggerRule,
    )


def __getattr__(name: str) -> Any:
    try:
        module_name, _, attribute = _PUBLIC[name].partition(":")
    except KeyError:
        raise AttributeError(f"module 'meta' has no attribute {name!r}") from None
    module = import_module(module_name)
    value = getattr(module, attribute) if attribute else module
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
