# postroom: `make serve` runs the broker, `make test` runs the tests, `make bench` the benchmarks.
# Each target sets up what it needs first (a .venv with the package and its test tools; the
# redis-server oracle where this machine can install it), so all work on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# The task-queue peers (RQ, arq, SAQ, Dramatiq, Celery) for `make bench`, in an environment of
# their own: arq needs a redis-py older than the one the tests use.
PEERS       := .venv-bench-tasks
PEERS_STAMP := $(PEERS)/.installed-stamp
ARGS   ?=

.PHONY: serve test test-fast lint bench oracle clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The oracle (Debian's redis-server) and redis-benchmark; installed when missing and we can.
oracle:
	@command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools) >/dev/null; \
	  else echo "note: redis-server not installed; oracle tests will be skipped"; fi; }

serve: $(STAMP)
	$(BIN)/postroom serve $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

test: $(STAMP) oracle lint
	$(BIN)/python -m pytest -q $(ARGS)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" $(ARGS)

$(PEERS_STAMP): bench/requirements-tasks.txt pyproject.toml
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --upgrade pip
	$(PEERS)/bin/pip install -q -r bench/requirements-tasks.txt -e .
	touch $(PEERS_STAMP)

bench: $(STAMP) $(PEERS_STAMP) oracle
	$(BIN)/pip install -q -e '.[bench]'
	BENCH_TASKS_PYTHON=$(abspath $(PEERS))/bin/python $(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) $(PEERS) data .pytest_cache
