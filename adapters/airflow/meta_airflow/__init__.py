"""meta adapter for Apache Airflow 3."""
