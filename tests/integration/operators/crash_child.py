"""Run in a child process by test_load_crash: a big ``replace`` load that stops inside its transaction (after the
DELETE, before the INSERT and COMMIT), says so on stdout, and waits to be killed with SIGKILL."""

from __future__ import annotations

import sys
import time

from meta.builtin.operators.warehouse import WarehouseLoadOptions, load

BIG_QUERY = {
    "postgresql": "SELECT g AS id, CASE WHEN g % 2 = 0 THEN 'even' ELSE 'odd' END AS part, g AS v "
    "FROM generate_series(1, 300000) AS g",
    "duckdb": "SELECT range AS id, CASE WHEN range % 2 = 0 THEN 'even' ELSE 'odd' END AS part, range AS v "
    "FROM range(1, 300001)",
    "sqlite": "WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 300000) "
    "SELECT n AS id, CASE WHEN n % 2 = 0 THEN 'even' ELSE 'odd' END AS part, n AS v FROM g",
}


def main(url: str, table: str, engine: str) -> None:
    def hang_inside(step: str) -> None:
        if step == "deleted":
            print("IN_TRANSACTION", flush=True)
            time.sleep(120)

    options = WarehouseLoadOptions(table=table, url=url, mode="replace", source={"query": BIG_QUERY[engine]})
    load(options, on_step=hang_inside)
    print("COMMITTED", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
