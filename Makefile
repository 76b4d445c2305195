# The room portal's entry points. `make run` and `make test` set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
N ?= 10000

.PHONY: run smoke test bench bench-smoke lint deps dev-deps redis clean

run: deps
	@scripts/run-portal || [ $$? -eq 130 ]  # 130: stopped with Ctrl-C, as intended

# Start `make run`, check that it serves, syncs and stops cleanly (CI runs it first).
smoke:
	@scripts/smoke-make-run

test: dev-deps
	@scripts/ensure-redis
	@scripts/ensure-chromium
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print figures (nothing is asserted). SQLite by default; with
# DATABASE_URL=postgres://user:password@host/name they run on PostgreSQL, each in a database
# of its own beside that one (<name>_bench_...), dropped at the end.
ADMIN_N ?= 100000
ADMIN_AUDIT ?= 1000000
PROCESS_N ?= 50000
ACTIVITY_SESSIONS ?= 1000000
bench: dev-deps
	@scripts/ensure-redis
	$(PY) bench/client_bench.py --conferences $(N)
	$(PY) bench/sync_bench.py --conferences $(N)
	$(PY) bench/process_bench.py --conferences $(PROCESS_N)
	$(PY) bench/admin_bench.py --conferences $(ADMIN_N) --audit $(ADMIN_AUDIT)
	$(PY) bench/bulk_edit_bench.py
	$(PY) bench/activity_bench.py
	$(PY) bench/activity_pages_bench.py --sessions $(ACTIVITY_SESSIONS)
	$(PY) bench/sandbox_bench.py
	$(PY) bench/spaces_bench.py

# The same benchmarks once at a small size, so they cannot rot (CI runs it on both databases).
bench-smoke: dev-deps
	@scripts/ensure-redis
	$(PY) bench/sync_bench.py --conferences 2000 --trials 1
	$(PY) bench/process_bench.py --conferences 2000 --trials 1
	$(PY) bench/admin_bench.py --conferences 2000 --audit 20000 --repeat 2
	$(PY) bench/bulk_edit_bench.py --rows 50
	$(PY) bench/activity_bench.py --rooms 50 --sessions 200 --live 5 --new 10
	$(PY) bench/activity_pages_bench.py --sessions 2000 --repeat 2
	$(PY) bench/sandbox_bench.py --rooms 50 --sessions 2000 --repeat 2
	$(PY) bench/spaces_bench.py --conferences 200 --trials 1 --rows 50

lint: dev-deps
	$(VENV)/bin/ruff check . scripts/ensure-dotenv scripts/smoke-make-run
	$(VENV)/bin/mypy

deps: $(VENV)/.deps-runtime
dev-deps: $(VENV)/.deps-dev

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.deps-runtime: requirements.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.deps-runtime

redis: deps
	@scripts/ensure-redis

clean:
	rm -rf $(VENV) .run staticfiles .pytest_cache
