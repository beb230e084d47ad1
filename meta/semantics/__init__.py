"""Airflow's semantics, implemented once: trigger rules and run state, retry delays, the run context and the
``META_*`` environment contract, params, run requests, and the one scheduler every backend drives.
"""
