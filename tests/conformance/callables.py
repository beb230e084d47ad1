"""Python callables used by conformance cases; importable by every backend's workers (repo root on PYTHONPATH)."""


def choose_left() -> str:
    return "left"


def check_context(params: dict, run_id: str, ds: str) -> None:
    if params.get("country") != "CH":
        raise ValueError(f"expected params.country == 'CH', got {params!r}")
    if not run_id or len(ds) != 10:
        raise ValueError(f"run context missing: run_id={run_id!r} ds={ds!r}")
