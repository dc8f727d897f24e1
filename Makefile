# The two commands of the README: `make demo` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-stamp
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 180

.PHONY: install demo test lint bench load debian-tools

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

# Debian packages a test needs (LibreOffice for the round-trip test), installed where apt-get may run as root;
# elsewhere that test is skipped and says why.
DEBIAN_TEST_PACKAGES := libreoffice-calc-nogui

debian-tools:
	@command -v soffice >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $(DEBIAN_TEST_PACKAGES); } >/dev/null 2>&1; } \
		|| echo "LibreOffice not installed: its round-trip test will be skipped"

test: lint debian-tools
	$(VENV)/bin/pytest -n 2 --dist loadfile

# The scaled-out topology under load (PostgreSQL + Redis on this machine): 300 flow runs, ~30 minutes (CI runs it).
load: $(STAMP)
	flock /tmp/atlasflow-topology.lock $(VENV)/bin/pytest -m load tests/topology/test_load.py -s --timeout 3600

bench: $(STAMP)
	$(VENV)/bin/python bench/run_all.py
