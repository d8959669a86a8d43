# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
GEN    := client/stubs
PROTOS := $(shell find protos -name '*.proto')
DESCRIPTOR := build/caixa.pb
THIRD_PARTY := third_party/googleapis

.PHONY: all venv proto descriptor chart-descriptor openapi run test lint typecheck buflint ci clean bench image

all: proto

# Order matters: the editable install maps the generated top-level packages
# (lancamentos, consolidado) only if they exist when it runs.
$(VENV)/.tools:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet 'grpcio-tools>=1.66' 'mypy-protobuf>=3.6' 'googleapis-common-protos>=1.65'
	touch $@

# Stubs are regenerated from protos, never committed; tests/tooling/test_protos.py
# fails when the installed stubs differ from what the protos produce.
$(GEN)/.stamp: $(PROTOS) tooling/gen_protos.py $(VENV)/.tools
	$(PY) tooling/gen_protos.py --out $(GEN) --descriptor $(DESCRIPTOR) --third-party $(THIRD_PARTY)
	touch $@

DISTRIBUTIONS := client services mesh tooling

$(VENV)/.installed: pyproject.toml $(DISTRIBUTIONS:%=%/pyproject.toml) $(GEN)/.stamp
	$(PY) -m pip install --quiet $(DISTRIBUTIONS:%=-e ./%) --group dev
	@# setuptools leaves the egg-info of packages found from the root there; the
	@# installed dist-info is what counts.
	rm -rf caixa_*.egg-info client/*.egg-info
	touch $@

venv: $(VENV)/.installed

proto: $(VENV)/.installed

descriptor: proto

# The chart's transcoder EnvoyFilter embeds the descriptor set, and its REST field
# check the Lua rendered from it. Both are committed;
# tests/helm/test_transcoder_descriptor.py fails when either differs from build/caixa.pb.
CHART_DESCRIPTOR := helm/caixa/files/caixa.pb
CHART_REST_CHECK := helm/caixa/files/rest_fields.lua

chart-descriptor: proto
	cp $(DESCRIPTOR) $(CHART_DESCRIPTOR)
	$(PY) -m mesh render rest-check -f helm/caixa/values.yaml --descriptor $(DESCRIPTOR) \
		--out $(CHART_REST_CHECK)

# The REST surface's OpenAPI document is committed; tests/tooling/test_openapi.py
# fails when it differs from what the protos produce.
OPENAPI := openapi/caixa.openapi.json

openapi: proto
	$(PY) -m tooling.openapi --descriptor $(DESCRIPTOR) --out $(OPENAPI)

run: proto
	$(PY) -m tooling.devstack

test: proto
	$(PY) -m pytest $(PYTEST_ARGS)

lint: proto
	$(VENV)/bin/ruff check $(DISTRIBUTIONS) tests bench
	$(VENV)/bin/ruff format --check $(DISTRIBUTIONS) tests bench
	$(VENV)/bin/lint-imports

typecheck: proto
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy tests

# The protos as first published (nothing is released yet): a wire- or
# JSON-breaking change against this baseline fails. A deliberate break is a new
# package version (v2), never an edit of this file.
API_BASELINE := protos/v1-baseline.json

buflint: proto
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf breaking --against $(API_BASELINE)

ci: lint typecheck buflint test

bench: proto
	$(PY) -m bench.run $(BENCH_ARGS)

# The container image (Dockerfile), built with buildah from a cached Debian
# debootstrap base, then run and checked; needs root. See README,
# "Container image".
image: proto
	tooling/image/build.sh
	tooling/image/check.sh

clean:
	rm -rf $(GEN) build third_party .pytest_cache .mypy_cache .ruff_cache
