"""Benchmarks: each ``bench/bench_<name>.py`` runs as ``python -m bench.bench_<name>`` and prints a table + ratio."""
