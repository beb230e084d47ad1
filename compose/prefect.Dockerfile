# Prefect 3 (newest installable alone) with the meta core and the Prefect adapter.
FROM python:3.11-slim
WORKDIR /opt/meta
COPY constraints/prefect-alone.txt constraints/prefect-alone.txt
COPY pyproject.toml README.md ./
COPY meta meta
COPY adapters/prefect adapters/prefect
RUN pip install --no-cache-dir uv \
 && uv pip install --system -c constraints/prefect-alone.txt . ./adapters/prefect asyncpg
COPY dags dags
