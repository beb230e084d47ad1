"""Python callables used by conformance cases; importable by every backend's workers (repo root on PYTHONPATH)."""


def choose_left() -> str:
    return "left"


def check_context(params: dict, run_id: str, ds: str) -> None:
    if params.get("country") != "CH":
        raise ValueError(f"expected params.country == 'CH', got {params!r}")
    if not run_id or len(ds) != 10:
        raise ValueError(f"run context missing: run_id={run_id!r} ds={ds!r}")


# -- results and mapping -------------------------------------------------------------------------------------------


def expect(value: object, expected: object) -> object:
    """Fail unless a task received ``expected`` (results are compared as JSON: lists, not tuples)."""
    if value != expected:
        raise ValueError(f"expected {expected!r}, received {value!r}")
    return value


def extract() -> dict:
    return {"rows": 3, "source": "orders"}


def transform(data: dict) -> int:
    expect(data, {"rows": 3, "source": "orders"})
    return data["rows"] * 2


def numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


def square(x: int, power: int = 2) -> int:
    return x**power


def pair(x: int, y: str) -> str:
    return f"{x}{y}"


def fail_on(x: int, bad: int) -> int:
    if x == bad:
        raise ValueError(f"element {x} is bad")
    return x


def flaky_on(x: int, flaky: int, try_number: int) -> int:
    """Fails its first try for ``flaky`` only: that instance alone is retried."""
    if x == flaky and try_number < 2:
        raise RuntimeError(f"element {x} fails its first try")
    return x


def pick_by_total(values: list[int]) -> str:
    return "big" if sum(values) > 10 else "small"


def too_big() -> str:
    return "x" * 70_000


def not_a_list() -> int:
    return 5
