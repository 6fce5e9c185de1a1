# Crowdmade: the README's commands. Every target installs what it needs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test test-fast test-e2e lint bench demo migrate clean fuzz

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the site on SQLite with demo data, jobs in-process and the dev mailbox.
run: $(STAMP)
	SUPPORT_THRESHOLD=$${SUPPORT_THRESHOLD:-10} $(BIN)/crowdmade run --port $(PORT)

## make test: the whole suite (service, HTTP, concurrency, browser) on $$DATABASE_URL (default SQLite).
## E2E=0 leaves out the browser tests (CI's second pass, on PostgreSQL: they ran in the first).
E2E ?= 1
NO_E2E := $(if $(filter 0,$(E2E)), and not e2e,)
test: $(STAMP)
	$(BIN)/bandit -c pyproject.toml -q -r app
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m tests.e2e.ensure_browser
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m "not serial$(NO_E2E)"
	$(BIN)/python -m pytest -q -m "serial$(NO_E2E)"

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not e2e"

## make fuzz: the OpenAPI fuzz test (tests/attacks/test_schemathesis.py) with many more examples per
## operation than the suite's quick run (FUZZ_MAX_EXAMPLES, default 300 here).
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-300} $(BIN)/python -m pytest -q --timeout=0 tests/attacks/test_schemathesis.py

## make bench: launch-day benchmark on PostgreSQL (database crowdmade_bench, large data loaded once and
## reused), `crowdmade serve --workers 2` + worker, wrk vs a bare-Litestar baseline, pledge surge;
## writes tests/perf/results.json. BENCH_SCALE=small / BENCH_SECONDS / BENCH_PLEDGES for quicker runs.
bench: $(STAMP)
	$(BIN)/python -m tests.perf.bench

lint: $(STAMP)
	$(BIN)/ruff check app tests migrations
	$(BIN)/lint-imports --no-cache
	$(BIN)/bandit -c pyproject.toml -q -r app

migrate: $(STAMP)
	$(BIN)/crowdmade migrate

demo: $(STAMP)
	$(BIN)/crowdmade demo

clean:
	rm -rf $(VENV) var .pytest_cache
