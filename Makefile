# Backoffice. The two set-up commands: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export FLASK_APP := wsgi:app
PYTEST_WORKERS ?= auto
# `--strict` fails the audit on a package the vulnerability service cannot look up (set it where PyPI's JSON API
# knows every pinned version; a local mirror's builds are skipped, and the table says so).
PIP_AUDIT_FLAGS ?=

.PHONY: install translations demo demo-reset test test-fast lint messages bench clean services constraints

# Every package at the version constraints.txt pins, so a fresh machine installs what CI tested.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(BIN)/python -c "import backoffice, flask, playwright, xdist"
	touch $@

install: $(STAMP) translations

# Re-pin after changing install_requires or the dev extra in setup.cfg (pins already there are kept when they
# still fit; `UPGRADE=--upgrade` moves everything to the newest), then `make install`.
constraints: $(STAMP)
	CUSTOM_COMPILE_COMMAND="make constraints" $(BIN)/pip-compile --quiet --strip-extras --extra dev \
	  --no-emit-index-url --no-emit-find-links $(UPGRADE) --output-file constraints.txt setup.cfg

translations: $(STAMP)
	$(BIN)/pybabel compile -d backoffice/translations >/dev/null

# The demo, on the development entry point (backoffice.dev): embedded PostgreSQL and a secret key under
# instance/, jobs in-process, the development login, demo data in the Stripe sandbox beside the app (scripts/demo.sh).
demo: install
	bash scripts/demo.sh

# Forget the demo's database, sandbox state and pictures (the next `make demo` loads afresh).
demo-reset:
	rm -rf instance/postgres instance/sandbox.json instance/sandbox.log instance/migrate.log instance/blobs instance/webhook-secret

services:
	bash scripts/ensure-services.sh

test: install services
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadgroup -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not e2e"

lint: install
	$(BIN)/ruff check backoffice tests worker.py wsgi.py benchmarks
	$(BIN)/flake8 backoffice tests worker.py wsgi.py benchmarks
	$(BIN)/pip-audit --local --skip-editable --progress-spinner off $(PIP_AUDIT_FLAGS)

# Refresh the message catalogs after changing operator-visible strings.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --ignore-dirs '.* __pycache__' --no-location --sort-output -o backoffice/translations/messages.pot backoffice templates
	$(BIN)/pybabel update -N -i backoffice/translations/messages.pot -d backoffice/translations

bench: install
	$(BIN)/python -m benchmarks.bench_shell
	$(BIN)/python -m benchmarks.bench_sandbox
	$(BIN)/python -m benchmarks.bench_webhook
	$(BIN)/python -m benchmarks.bench_demo
	$(BIN)/python -m benchmarks.bench_replay
	$(BIN)/python -m benchmarks.bench_live
	$(BIN)/python -m benchmarks.bench_accounts
	$(BIN)/python -m benchmarks.bench_users
	$(BIN)/python -m benchmarks.bench_sweep
	$(BIN)/python -m benchmarks.bench_reconcile
	$(BIN)/python -m benchmarks.bench_billing_lists
	$(BIN)/python -m benchmarks.bench_dashboard
	$(BIN)/python -m benchmarks.bench_prove
	$(BIN)/python -m benchmarks.bench_outage
	$(BIN)/python -m benchmarks.bench_global_search

clean:
	rm -rf $(VENV) build *.egg-info
