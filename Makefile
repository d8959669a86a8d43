# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
GEN    := gen/python
PROTOS := $(shell find protos -name '*.proto')
DESCRIPTOR := build/caixa.pb
THIRD_PARTY := third_party/googleapis

.PHONY: all venv proto descriptor run test lint typecheck buflint ci clean bench

all: proto

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	mkdir -p $(GEN)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

# Stubs are regenerated from protos, never committed; tests/test_protos.py
# fails when the installed stubs differ from what the protos produce.
$(GEN)/.stamp: $(PROTOS) scripts/gen_protos.py $(VENV)/.installed
	$(PY) scripts/gen_protos.py --out $(GEN) --descriptor $(DESCRIPTOR) --third-party $(THIRD_PARTY)
	touch $@

proto: $(GEN)/.stamp

descriptor: proto

run: proto
	$(PY) -m caixa.devstack

test: proto
	$(PY) -m pytest $(PYTEST_ARGS)

lint: proto
	$(VENV)/bin/ruff check src tests scripts bench
	$(VENV)/bin/ruff format --check src tests scripts bench

typecheck: proto
	$(VENV)/bin/mypy

buflint: proto
	$(VENV)/bin/buf lint

ci: lint typecheck buflint test

bench: proto
	$(PY) -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(GEN) build third_party .pytest_cache .mypy_cache .ruff_cache
