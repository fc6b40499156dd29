# pinnkit developer commands. `make solve` and `make test` work on a fresh machine.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_FLAGS ?=
# One OpenBLAS thread: its pool oversubscribes the cores XLA uses (see pinnkit/__init__.py).
OPENBLAS_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS

.PHONY: install solve test test-fast regression lint bench clean

$(BIN)/pinnkit: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(BIN)/pinnkit

install: $(BIN)/pinnkit

# Install, then solve the Burgers reference problem (about 2 minutes on 2 CPU cores).
solve: install
	$(BIN)/pinnkit solve problems/burgers1d.yaml --out runs/burgers1d

# Install, then run the unit tests and every reference problem at its CI budget (the tests
# marked `slow` are the full-budget runs of `make regression`). Each test file runs in its own
# process: one process that compiled every program of the suite crashed natively inside XLA's
# compiler late in the run (twice, in different tests that pass on their own).
TEST_FILES ?= $(sort $(wildcard tests/regression/test_*.py)) $(sort $(wildcard tests/test_*.py))
test: install
	@failed=""; for f in $(TEST_FILES); do \
	  echo "== $$f"; \
	  $(BIN)/pytest -m "not slow" $(PYTEST_FLAGS) $$f; rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then failed="$$failed $$f"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	echo "every test file passed"

# Unit tests only (no reference-problem runs).
test-fast: install
	$(BIN)/pytest -m "not regression" $(PYTEST_FLAGS)

# The reference problems alone, at the bars their issues name (the full budgets included).
regression: install
	@failed=""; for f in $(sort $(wildcard tests/regression/test_*.py)); do \
	  $(BIN)/pytest -m regression -v $(PYTEST_FLAGS) $$f || failed="$$failed $$f"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi

lint: install
	$(BIN)/ruff format --check pinnkit tests benchmarks
	$(BIN)/ruff check pinnkit tests benchmarks

bench: install
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf runs .pytest_cache
