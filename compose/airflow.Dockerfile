# Airflow 3.3 with the meta core and the Airflow adapter, pinned by the project's constraints.
FROM python:3.11-slim
WORKDIR /opt/meta
COPY constraints/dev.txt constraints/dev.txt
COPY pyproject.toml README.md ./
COPY meta meta
COPY adapters/airflow adapters/airflow
RUN pip install --no-cache-dir uv \
 && uv pip install --system -c constraints/dev.txt . ./adapters/airflow "psycopg2-binary" "psycopg[binary]"
COPY dags dags
COPY plugins /opt/airflow/plugins
