# pinnkit developer commands. `make solve` and `make test` work on a fresh machine.
PY ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_FLAGS ?=
# One OpenBLAS thread: its pool oversubscribes the cores XLA uses (see pinnkit/__init__.py).
OPENBLAS_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS

.PHONY: install solve test test-fast regression fuzz lint bench clean

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
# marked `slow` are the full-budget runs of `make regression`): each test file in its own
# process, two at a time (see tests/run_files.py).
JOBS ?= 2
test: install
	$(BIN)/python tests/run_files.py --jobs $(JOBS) -- $(PYTEST_FLAGS)

# Unit tests only (no reference-problem runs).
test-fast: install
	$(BIN)/pytest -m "not regression" $(PYTEST_FLAGS)

# The reference problems alone, at the bars their issues name (the full budgets included).
regression: install
	$(BIN)/python tests/run_files.py --jobs 1 --marks regression \
	  $(sort $(wildcard tests/regression/test_*.py)) -- -v $(PYTEST_FLAGS)

# Mutated specs, loaded and validated without training (issue 16): prints the outcome table
# and the classes of uncaught errors; exits 1 while any remain.
FUZZ_N ?= 10000
FUZZ_SEED ?= 20261207
# Bad input at scale (issue 16): the seeded table of outcomes, then the property tests at
# the same number of examples.
fuzz: install
	$(BIN)/python tests/spec_fuzz.py --n $(FUZZ_N) --seed $(FUZZ_SEED) --jobs $(JOBS)
	PINNKIT_FUZZ_EXAMPLES=$(FUZZ_N) $(BIN)/pytest tests/test_spec_properties.py $(PYTEST_FLAGS)

lint: install
	$(BIN)/ruff format --check pinnkit tests benchmarks
	$(BIN)/ruff check pinnkit tests benchmarks

bench: install
	$(BIN)/python benchmarks/run_benchmarks.py

clean:
	rm -rf runs .pytest_cache
