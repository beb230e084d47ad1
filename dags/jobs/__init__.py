"""Python callables of the example pipelines (importable as ``jobs.<module>`` with dags/ on sys.path, as in Airflow)."""
