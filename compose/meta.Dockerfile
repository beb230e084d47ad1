# The control plane (`meta serve`): the meta core with its [server] and [postgres] extras, pinned by the project's
# constraints (the versions the tests run), and the stack's workspace (compose/meta.yaml) with the specs it places.
FROM python:3.11-slim
WORKDIR /opt/meta
COPY constraints/dev.txt constraints/dev.txt
COPY pyproject.toml README.md ./
COPY meta meta
RUN pip install --no-cache-dir uv \
 && uv pip install --system -c constraints/dev.txt ".[server,postgres]"
COPY dags dags
COPY compose/meta.yaml meta.yaml
ENV META_HOME=/var/lib/meta META_SECRETS_DIR=/run/secrets
EXPOSE 8765
CMD ["meta", "serve", "--workspace", "/opt/meta/meta.yaml"]
