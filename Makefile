# Two commands do all setup on a fresh machine:  `make demo`  and  `make test`.
# Both bootstrap uv (into .tools/ with pip), create the environments and install the workspace: `make demo` only the
# core and the control plane (`.[server]`, no Airflow, no Prefect), `make test` / `make env` everything.

PYTHON       ?= python3
UV_VERSION   := 0.13.9
TOOLS        := .tools
UV           := $(TOOLS)/bin/uv
VENV         := .venv
VENV_PREFECT := .venv-prefect
BIN          := $(VENV)/bin
export PATH  := $(abspath $(BIN)):$(PATH)
export UV_LINK_MODE := copy

.PHONY: demo demo-stack test browser test-main test-prefect-alone lint fmt bench env env-core env-prefect constraints clean

demo: env-core  ## the whole product on the embedded runner: control plane, a dependent started by it, SLAs (Ctrl-C stops)
	$(BIN)/python -m dags.demo $(DEMO_ARGS)

demo-stack: env  ## the same story on a real Airflow 3 and Prefect 3 the demo starts on loopback ports (Ctrl-C stops)
	$(BIN)/python -m dags.demo --stack $(DEMO_ARGS)

test: env env-prefect browser  ## the whole suite: lint, types, unit, conformance, real Airflow/Prefect/Postgres
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory test-main
	$(MAKE) --no-print-directory test-prefect-alone

test-main: env
	$(BIN)/python -m pytest

test-prefect-alone: env-prefect  ## meta-prefect and the control plane with the newest Prefect, without Airflow
	$(VENV_PREFECT)/bin/python -m pytest -p no:cacheprovider adapters/prefect/tests
	$(VENV_PREFECT)/bin/python -m pytest -p no:cacheprovider tests/unit/service

lint: env
	$(BIN)/ruff check meta adapters plugins dags tests bench
	$(BIN)/ruff format --check meta adapters plugins dags tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

fmt: env
	$(BIN)/ruff format meta adapters plugins dags tests bench
	$(BIN)/ruff check --fix meta adapters plugins dags tests bench

bench: env  ## every benchmark; results go to docs/benchmarks.md by hand
	$(BIN)/python -m bench

# Debian's Chromium for the dashboard's browser tests (Playwright drives it by executable_path: Playwright's own
# browser download cannot reach its host here).
CHROMIUM     ?= /usr/bin/chromium
SUDO         := $(shell test "$$(id -u)" = 0 || echo sudo)
browser:
	@test -x $(CHROMIUM) || (DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium)

env: $(VENV)/.installed
env-core: $(VENV)/.core-installed
env-prefect: $(VENV_PREFECT)/.installed

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

# The core and the server extra only, at the versions pinned in constraints/dev.txt (-c pins without installing;
# -r would install every pinned package, Airflow and Prefect included).
$(VENV)/.core-installed: $(UV) constraints/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -c constraints/dev.txt -e '.[server]'
	@touch $@

$(VENV)/.installed: $(UV) constraints/dev.txt pyproject.toml adapters/airflow/pyproject.toml adapters/prefect/pyproject.toml
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -r constraints/dev.txt -c constraints/dev.txt \
		-e '.[server]' -e adapters/airflow -e adapters/prefect
	@touch $@ $(VENV)/.core-installed

$(VENV_PREFECT)/.installed: $(UV) constraints/prefect-alone.txt pyproject.toml adapters/prefect/pyproject.toml
	@test -x $(VENV_PREFECT)/bin/python || $(UV) venv --quiet --python $(PYTHON) $(VENV_PREFECT)
	$(UV) pip install --quiet --python $(VENV_PREFECT)/bin/python -r constraints/prefect-alone.txt \
		-c constraints/prefect-alone.txt -e '.[server]' -e adapters/prefect
	@touch $@

constraints:  ## re-pin constraints/*.txt from constraints/*.in (name==version only, no URLs)
	$(UV) pip compile --quiet --no-annotate --no-header --python-version 3.11 constraints/dev.in -o constraints/dev.txt
	$(UV) pip compile --quiet --no-annotate --no-header --python-version 3.11 constraints/prefect-alone.in -o constraints/prefect-alone.txt

clean:
	rm -rf $(VENV) $(VENV_PREFECT) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
