"""Example pipelines. ``python -m dags.demo`` (``make demo``) runs marketing_roi.yaml on the local runner."""
