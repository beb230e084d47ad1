"""meta adapter for Prefect 3."""
