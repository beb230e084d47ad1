"""The neutral pipeline model and its vocabulary (states, trigger rules, durations, errors, structural checks,
DAG helpers). The bottom layer: imports nothing else of meta.
"""
