"""Run every benchmark module in bench/ (``python -m bench``), each in its own interpreter.

A separate process per benchmark keeps one benchmark's imports, caches and threads from skewing the next.
Extra arguments after ``--only`` pick benchmarks by name: ``python -m bench --only load runner``.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    wanted = argv[argv.index("--only") + 1 :] if "--only" in argv else []
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_"))
    if wanted:
        names = [n for n in names if n.removeprefix("bench_") in wanted or n in wanted]
    failures = 0
    for name in names:
        print(f"== bench.{name}", flush=True)
        code = subprocess.run([sys.executable, "-m", f"bench.{name}"], check=False).returncode
        if code:
            print(f"!! bench.{name} exited with {code}", flush=True)
            failures += 1
        print(flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
