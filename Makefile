# Sync vs async FastAPI on a real MariaDB or PostgreSQL. `make help` lists the targets.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
BENCH := $(PY) -m bench
APP ?= sync
# BACKEND=postgres (or "mariadb postgres": one run on both) for db, bench, bench-quick, run-sync, run-async.
BACKEND ?=
unexport BACKEND  # a make variable only: the apps read BACKEND from the environment
ON := $(foreach b,$(BACKEND),--backend $(b))

.DEFAULT_GOAL := help
LOCK_ARGS := --extra dev --extra mysqlclient --generate-hashes --python-version 3.11 \
	--python-platform x86_64-manylinux_2_28

.PHONY: help venv lock lock-check machines db db-down run-sync run-async test test-fast lint fmt clean bench bench-quick bench-variants bench-interference perf-check perf-baseline ui

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-20s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.lock scripts/bootstrap
	@./scripts/bootstrap

venv: $(VENV)/.installed ## Create .venv and install exactly requirements.lock (done by every target that needs it)

lock: venv ## Re-resolve requirements.lock to the newest releases inside pyproject.toml's ranges (then make test)
	$(VENV)/bin/uv pip compile pyproject.toml $(LOCK_ARGS) --upgrade --custom-compile-command "make lock" \
		--quiet -o requirements.lock
	@$(MAKE) --no-print-directory venv

lock-check: db ## Would today's newest releases break us? Lint and fast tests in a throw-away venv (lock untouched)
	@LOCK_ARGS="$(LOCK_ARGS)" ./scripts/lock-check

db: venv ## Start (or reuse) the private MariaDB on 127.0.0.1:3307 (BACKEND=postgres: PostgreSQL on 5433), or check DATABASE_URL
	@for b in $(or $(BACKEND),default); do $(BENCH) db up $$([ $$b = default ] || echo --backend $$b) || exit; done

db-down: venv ## Stop every private database server (by its PID)
	@$(BENCH) db down

run-sync: db ## Serve the sync app on 127.0.0.1:8001 (on the server `make db` started last)
	$(VENV)/bin/uvicorn sync_app.main:app --host 127.0.0.1 --port 8001 --no-access-log

run-async: db ## Serve the async app on 127.0.0.1:8002
	$(VENV)/bin/uvicorn async_app.main:app --host 127.0.0.1 --port 8002 --no-access-log

lint: venv ## ruff + mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

fmt: venv ## Format and autofix
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: venv ## The full comparison: paired verdicts at 16 users (5 repeats, each on two new app processes), solo points at 16 and 64 users, latency sweep (4 repeats), CPU per request by layer (py-spy); ~16 min + report (BACKEND=postgres: 3 apps, ~21 min: 19 measured before the 15 profiled points)
	@$(BENCH) run --profile --machine-summary $(ON) $(ARGS)

bench-quick: venv ## The headline verdict only (read_heavy, paired at 16 users, 8 repeats) in about 1.5 minutes; BACKEND=postgres
	@$(BENCH) run --quick $(ON) $(ARGS)

VARIANTS := -a sync -a async -a sync-mysqlclient -a async-aiomysql -a async-blocking -a sync-naive -a sync-raw \
	-a async-raw -a async-admission -a sync-40
bench-variants: venv ## Variants: driver pairs, ceilings (raw drivers), admission control, 40 tokens, the anti-patterns (~14 min)
	@$(BENCH) run $(VARIANTS) -s read_heavy -s slow_db --db-ms 20 --users 16,64 --sweep-users 64 --headline-users 16 \
		--repeats 2 --paired-repeats 3 --label variants $(ARGS)

INTERFERENCE := -s interference_none -s interference_cpu -s interference_argon2 -s interference_io
bench-interference: venv ## Does one request hold up the others, and do they wait for the GIL or the CPU? Probes beside CPU, Argon2 and I/O work, py-spy on each app (~6 min)
	@$(BENCH) run -a sync -a async -a async-blocking $(INTERFERENCE) --users 12 --repeats 3 --paired-repeats 0 \
		--duration 6 --profile --label interference $(ARGS)

machines: venv ## The answer on every machine measured: machines/*.json side by side (machines.md, .png)
	@$(BENCH) machines

perf-check: venv ## Regression gate: statement counts per route, then current vs baseline code side by side (~3 min)
	@$(BENCH) perf-check $(ARGS)

perf-baseline: venv ## Make the current commit the baseline (runs the suite, ~4 min; commit results/baseline)
	@$(BENCH) perf-baseline $(ARGS)

ui: venv ## Locust web UI on 127.0.0.1:8089 against APP=sync|async (seeded database)
	@$(BENCH) ui --app $(APP)

test: db ## Lint, then every test on the real database
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest

test-fast: venv ## Lint, then the tests that start nothing and need no database server (about a minute)
	@$(MAKE) --no-print-directory lint
	$(VENV)/bin/pytest -m "not e2e and not server and not browser"

clean: ## Remove caches (keeps .venv, the database and results)
	rm -rf .mypy_cache .ruff_cache .pytest_cache
