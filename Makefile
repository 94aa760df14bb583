# The two commands of the README: `make demo` and `make test`. Both set up what they need first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 8000
STAMP := $(VENV)/.installed

.PHONY: demo test setup browser-deps proxy-deps bench-deps postgres lint typecheck bench bench-instructions e2e translations specs lock container-smoke clean

# requirements.lock pins every dependency (runtime and dev) at the tested version; the image uses it too.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $(STAMP)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch node_modules/.installed

setup: $(STAMP) node_modules/.installed
	$(BIN)/python scripts/build_assets.py

demo: setup
	$(BIN)/zgw-identificatie demo --port $(PORT)

# Debian's chromium for the browser tests (a test tool's own browser download does not work here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# HAProxy for the scale-out run (tests/integration/test_scaleout.py, scripts/scaleout.py).
proxy-deps:
	@command -v haproxy >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }

# PostgreSQL on 127.0.0.1:5432 (database `test`), started when it is down.
postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start
	@for i in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done

# Lint and type checks first (CI shows them as their own steps), then the whole suite.
test: setup lint typecheck browser-deps proxy-deps postgres
	$(BIN)/python -m pytest -p no:cacheprovider

e2e: setup browser-deps
	$(BIN)/python -m pytest -p no:cacheprovider -m browser

translations:
	$(BIN)/pybabel extract -F babel.cfg -k _l --sort-by-file --no-wrap -o src/zgw_identificatie/translations/messages.pot .
	$(BIN)/pybabel update -i src/zgw_identificatie/translations/messages.pot -d src/zgw_identificatie/translations --no-wrap --ignore-obsolete

lint: setup
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: setup
	$(BIN)/mypy

# The official OpenAPI documents the tests validate against, at pinned commits, SHA-256 checked, into
# $$ZGWID_TEST_SPECS_DIR (default ../shared/specs). Needs internet access to raw.githubusercontent.com.
specs:
	$(PYTHON) scripts/fetch_specs.py

# Re-resolve every dependency in a fresh virtual environment and write requirements.lock (review the diff).
lock:
	rm -rf .lock-venv
	$(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[dev]'
	{ sed -n '1,2p' requirements.lock; .lock-venv/bin/pip freeze --exclude-editable | grep -vi '^zgw-identificatie'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock
	rm -rf .lock-venv

# Build the image, start it, check /health/live, uid 10001 and a clean SIGTERM (skips without docker/podman).
container-smoke:
	scripts/container_smoke.sh

# Debian's wrk: the load generator of scripts/bench_service.py.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

# The hot paths in one process, then the service under gunicorn against hello world (BENCH_ARGS=--quick).
bench: setup bench-deps postgres
	$(BIN)/python scripts/benchmark.py
	$(BIN)/python scripts/bench_service.py $(BENCH_ARGS)

# Instructions per request under valgrind (callgrind): steady on a busy machine (AGAINST=<git ref> to compare).
bench-instructions: setup postgres
	@command -v valgrind >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null; }
	$(BIN)/python scripts/bench_instructions.py $(if $(AGAINST),--against $(AGAINST))

clean:
	rm -rf $(VENV) .lock-venv node_modules instance test-artifacts
