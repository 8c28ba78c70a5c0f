# casedesk: `make run` serves the embedded default, `make test` runs every check.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test lint unit bench bench-cases bench-servers profile bench-automation bench-traces bench-platform bench-channels bench-mail bench-pages bench-search clean

$(VENV)/.run-deps: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "casedesk needs Python 3.11 or newer; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(VENV)/.run-deps
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

## run: set up, migrate the SQLite file, create the demo tenant (key printed once), serve on CASEDESK_PORT (8000)
run: export CASEDESK_LOG_FORMAT ?= console
run: $(VENV)/.run-deps
	$(BIN)/casedesk db upgrade
	$(BIN)/casedesk demo
	$(BIN)/casedesk serve

## lint: ruff, mypy --strict on the package, and the layer contract
lint: $(VENV)/.test-deps
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## test: lint, then the whole suite on SQLite, PostgreSQL and MariaDB (and Redis, RabbitMQ),
## in TEST_WORKERS processes (most tests wait on databases and subprocesses, not the CPU)
TEST_WORKERS ?= 3
test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=30

$(VENV)/.bench-deps: $(VENV)/.test-deps
	$(BIN)/pip install --quiet -e '.[test,bench]'
	@touch $@

## bench: the case API beside django-helpdesk (same wrk settings), PostgreSQL and SQLite; BENCH_ARGS=--quick for a short run
bench: $(VENV)/.test-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.compare $(BENCH_ARGS)

## bench-cases: the case API alone (PostgreSQL, 100,000 cases, wrk at concurrency 32, with 8 tenants)
bench-cases: $(VENV)/.test-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.cases $(BENCH_ARGS)

## bench-servers: uvicorn on uvloop and asyncio, granian, and 1-4 server processes (detail, create)
bench-servers: $(VENV)/.bench-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.servers $(BENCH_ARGS)

## profile: py-spy on the server under wrk, SQL per request, CPU by package; PROFILE_ARGS="--scenario detail"
profile: $(VENV)/.bench-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.profile $(PROFILE_ARGS)

## bench-automation: commit → rule effect latency and events/s with one and two workers
bench-automation: $(VENV)/.test-deps
	$(BIN)/python -m bench.automation $(BENCH_ARGS)

## bench-traces: tracing overhead per call, ingest records/s, time to queryable, a 10x burst
bench-traces: $(VENV)/.test-deps
	$(BIN)/python -m bench.traces $(BENCH_ARGS)

## bench-platform: hook ingress and webhook → case beside n8n; 10,000 polling subscriptions
bench-platform: $(VENV)/.test-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.platform $(BENCH_ARGS)

## bench-channels: push → case and push → comment for Slack and Graph, 1 and 2 workers, against webhook → case
bench-channels: $(VENV)/.test-deps
	$(BIN)/python -m bench.channels $(BENCH_ARGS)

## bench-mail: IMAP fetch → case with a 1 MiB attachment and without, beside webhook → case (PostgreSQL, a private dovecot)
bench-mail: $(VENV)/.test-deps
	$(BIN)/python -m bench.mail $(BENCH_ARGS)

## bench-pages: the case page and the list page for a signed-in agent, against the case API (100,000 cases)
bench-pages: $(VENV)/.test-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.pages $(BENCH_ARGS)

## bench-search: q on the case list against the same list without q, reindex and indexer lag, beside django-helpdesk's search (SQLite and PostgreSQL, 100,000 cases)
bench-search: $(VENV)/.test-deps
	@command -v wrk >/dev/null || apt-get install -y wrk || { echo "install wrk (apt-get install wrk) and retry"; exit 1; }
	$(BIN)/python -m bench.search $(BENCH_ARGS)

unit: $(VENV)/.test-deps
	$(BIN)/pytest tests/unit

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache casedesk.db casedesk.db-wal casedesk.db-shm
