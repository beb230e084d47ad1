# Airflow 3.3 with the meta core, the Airflow adapter and Airflow's OpenLineage provider, pinned by the project's
# constraints (the versions the tests run); meta's plugins (Deadline Alert callback, the "meta" DAG tab).
FROM python:3.11-slim
WORKDIR /opt/meta
COPY constraints/dev.txt constraints/dev.txt
COPY pyproject.toml README.md ./
COPY meta meta
COPY adapters/airflow adapters/airflow
RUN pip install --no-cache-dir uv \
 && uv pip install --system -c constraints/dev.txt . ./adapters/airflow apache-airflow-providers-openlineage \
    "psycopg2-binary" "psycopg[binary]"
COPY dags dags
COPY plugins /opt/airflow/plugins
# AIRFLOW__OPENLINEAGE__TRANSPORT from META_OPENLINEAGE_URL and the ingest token secret, then the command
COPY compose/airflow_entrypoint.py /usr/local/bin/meta-airflow-entrypoint
ENTRYPOINT ["python", "/usr/local/bin/meta-airflow-entrypoint"]
