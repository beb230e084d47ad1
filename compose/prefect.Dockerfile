# Prefect 3 with the meta core and the Prefect adapter, pinned by constraints/dev.txt: the Prefect the tests run
# beside Airflow (prefect 3.7.x; constraints/prefect-alone.txt pins the newest Prefect installable alone).
FROM python:3.11-slim
WORKDIR /opt/meta
COPY constraints/dev.txt constraints/dev.txt
COPY pyproject.toml README.md ./
COPY meta meta
COPY adapters/prefect adapters/prefect
RUN pip install --no-cache-dir uv \
 && uv pip install --system -c constraints/dev.txt . ./adapters/prefect asyncpg
COPY dags dags
