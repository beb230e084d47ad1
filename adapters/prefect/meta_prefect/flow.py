"""``to_flow(pipeline)``: a Prefect flow built at run time, with the pipeline's params as flow parameters."""

from __future__ import annotations

import inspect
import keyword
from collections.abc import Callable
from datetime import datetime
from typing import Any

from prefect import Flow
from prefect.task_runners import ThreadPoolTaskRunner

from meta import CompileError, Pipeline
from meta_prefect import hooks
from meta_prefect.driver import DEFAULT_MAX_WORKERS, Outcome, run_pipeline

# JSON-schema types of a Param -> annotations shown in Prefect's parameter form. Values are checked by meta
# (Param.check_value, strictly like Airflow), so Prefect's own coercion is switched off (validate_parameters=False).
PY_TYPES: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "array": list,
    "object": dict,
    "null": type(None),
}


def check_param_names(pipeline: Pipeline) -> list[CompileError]:
    """Param names become Python keyword parameters of the flow function."""
    return [
        CompileError(
            "prefect",
            pipeline.id,
            f"param name {name!r}",
            "a Prefect flow parameter must be a Python identifier "
            "that is not a keyword (letters, digits, underscores; not starting with a digit)",
        )
        for name in pipeline.params
        if not name.isidentifier() or keyword.iskeyword(name)
    ]


def annotation(param_type: Any) -> Any:
    if param_type is None:
        return Any
    if isinstance(param_type, str):
        return PY_TYPES[param_type]
    kinds = tuple(PY_TYPES[t] for t in param_type)
    result = kinds[0]
    for kind in kinds[1:]:
        result = result | kind
    return result


def signature(pipeline: Pipeline) -> inspect.Signature:
    """Keyword-only parameters: required ones without a default, the others with their Param default."""
    parameters = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=inspect.Parameter.empty if param.required else param.default,
            annotation=annotation(param.type),
        )
        for name, param in pipeline.params.items()
    ]
    return inspect.Signature(parameters)


def flow_options(pipeline: Pipeline) -> dict[str, Any]:
    """Keyword arguments of ``Flow``/``@flow`` shared by ``to_flow`` and the generated flow files."""
    return {
        "name": pipeline.id,
        "description": pipeline.description,
        "retries": 0,
        "validate_parameters": False,
        "log_prints": True,
        "persist_result": False,
    }


def to_flow(
    pipeline: Pipeline,
    *,
    run_id: str | None = None,
    logical_date: datetime | None = None,
    observer: Callable[[Outcome], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> Flow[..., Any]:
    """A Prefect flow running ``pipeline`` with Airflow's semantics; call it with the pipeline's params."""
    problems = check_param_names(pipeline)
    if problems:
        raise problems[0]

    def run(**params: Any) -> Any:
        return run_pipeline(
            pipeline, params, run_id=run_id, logical_date=logical_date, observer=observer, progress=progress
        )

    run.__signature__ = signature(pipeline)  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = pipeline.id.replace(".", "_").replace("-", "_")
    runner: Any = ThreadPoolTaskRunner(max_workers=pipeline.max_active_tasks or DEFAULT_MAX_WORKERS)
    return Flow(
        fn=run,
        task_runner=runner,
        **flow_options(pipeline),
        **hooks.flow_hooks(pipeline, run_id),
    )
