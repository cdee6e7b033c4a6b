# postroom: `make serve` runs the broker, `make test` runs the tests, `make bench` the benchmarks.
# Each target sets up what it needs first (a .venv with the package and its test tools; the
# redis-server oracle where this machine can install it), so all work on a fresh clone.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
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

bench: $(STAMP) oracle
	$(BIN)/pip install -q -e '.[bench]'
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) data .pytest_cache
