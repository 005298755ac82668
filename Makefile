# ftpipe — run `make help` for the targets.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# stage commands in dvc.yaml call `python`: make it the venv's
export PATH := $(CURDIR)/$(BIN):$(PATH)

.DEFAULT_GOAL := help
.PHONY: help setup run repro push pull test test-slow lint typecheck format docs bench bench-accuracy lock clean-venv \
	device-wheels device-data device-carry

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP) ## create .venv from requirements.lock and install ftpipe (editable); reruns when the lock changes

run: $(STAMP) ## run the whole pipeline on the defaults: the Prefect retrain flow (local temporary server), then its summary
	$(BIN)/ftpipe run

repro: $(STAMP) ## `dvc repro` (same DAG, no orchestration)
	$(BIN)/dvc repro

push: $(STAMP) ## upload data and model to the DVC remote (default ~/.cache/ftpipe/dvc-remote; docs/sharing-a-run.md)
	$(BIN)/dvc push

pull: $(STAMP) ## fetch the data and model of the committed dvc.lock from the DVC remote; `make run` then retrains nothing
	$(BIN)/dvc pull

test: $(STAMP) ## the default test suite (slow tests excluded), one pytest-xdist worker per CPU core
	$(BIN)/pytest -n auto --dist loadscope

test-slow: $(STAMP) ## only the slow tests
	$(BIN)/pytest -m slow

lint: $(STAMP) ## ruff check and format check; lint-imports: the import layers in pyproject.toml
	$(BIN)/ruff check stages flows tests bench
	$(BIN)/ruff format --check stages flows tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP) ## mypy: strict on stages/ and flows/, gradual on bench/ (pyproject.toml)
	$(BIN)/mypy

format: $(STAMP) ## ruff format and autofix
	$(BIN)/ruff format stages flows tests bench
	$(BIN)/ruff check --fix stages flows tests bench

docs: $(STAMP) ## regenerate docs/params.md from the params models in stages/config/ (a test fails when it is stale)
	$(BIN)/python -m stages.config.reference --out docs/params.md

bench: $(STAMP) ## the benchmarks under bench/ (see bench/README.md)
	$(BIN)/python -m bench.run

bench-accuracy: $(STAMP) ## model vs baseline over 5 seeded splits (about 30 min on 2 CPU cores; run `make run` first)
	$(BIN)/python -m bench.accuracy

device-wheels: $(STAMP) ## wheels of the lock's pins a bare GPU machine lacks (cp312), into .device-carry/wheels/
	$(BIN)/python -m bench.gpu_device_prep wheels

device-data: $(STAMP) ## BBC splits (ingest..label) and the packaged MiniLM in bf16, packed into .device-carry/
	$(BIN)/python -m bench.gpu_device_prep data

device-carry: device-wheels device-data ## all a bare GPU machine needs for bench/gpu_device_check.py, then its dry run (<= 64 MiB)
	$(BIN)/python -m bench.gpu_device_check --dry-run

lock: ## re-resolve requirements.lock from pyproject.toml in a scratch venv
	rm -rf .lock-venv && $(PY) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet torch==2.13.0 -e '.[dev]'
	{ head -2 requirements.lock; .lock-venv/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu/torch==\1/'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf .lock-venv

clean-venv: ## remove .venv
	rm -rf $(VENV)
