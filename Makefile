# Thin wrappers: the logic lives in modelctl, tox and pre-commit. `make help` lists targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.bootstrapped
export BENTOML_DO_NOT_TRACK := true

.PHONY: help bootstrap hooks lint test test-fast test-changed test-models test-template demo demo-stop clean
# tox environments run side by side (each prints its time at the end); `auto` is one per core.
TEST_PARALLEL ?= auto

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2}'

# Installed only from files with hashes: uv (tooling/bootstrap.lock), then every package of the tools
# (tooling/requirements.lock, transitive ones included); shared/ and tooling/ themselves without dependencies.
$(STAMP): tooling/bootstrap.lock tooling/requirements.lock tooling/pyproject.toml shared/pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11+ is required; set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r tooling/bootstrap.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --require-hashes -r tooling/requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e shared -e tooling
	@# set-up installs the git hook too (skipped outside a git checkout)
	@if git rev-parse --git-dir >/dev/null 2>&1; then $(BIN)/pre-commit install; fi
	@touch $(STAMP)

bootstrap: $(STAMP) ## create .venv with uv, tox, pre-commit and modelctl (idempotent)

hooks: $(STAMP) ## install the git pre-commit hook
	$(BIN)/pre-commit install --install-hooks

lint: $(STAMP) ## run every pre-commit hook on all files
	$(BIN)/tox run -e lint

test: $(STAMP) ## everything CI runs: lint, shared, tooling, template, airflow, every model env, in parallel
	$(BIN)/tox run-parallel --parallel-no-spinner -p $(TEST_PARALLEL) -m platform models

test-fast: $(STAMP) ## the inner loop (under 2 minutes): platform tests with no server, no bento, no model env
	$(BIN)/tox run -e fast

test-changed: $(STAMP) ## what a range affects: lint, the platform's suites if it changed, its models: make test-changed BASE=origin/main
	@test -n "$(BASE)" || { echo "usage: make test-changed BASE=<ref> (e.g. origin/main)"; exit 2; }
	@envs=$$($(BIN)/modelctl changed --base "$(BASE)" --format tox) && \
	$(BIN)/tox run-parallel --parallel-no-spinner -p $(TEST_PARALLEL) -e "$$envs"

test-models: $(STAMP) ## every model's own tests, each in its own env
	$(BIN)/tox run -m models

test-template: $(STAMP) ## bake every framework variant and run the baked tests
	$(BIN)/tox run -e template

demo: $(STAMP) ## the whole flow for the example model: validate, test, train, build, fuzz, load-test gate, deploy to local staging
	$(BIN)/modelctl list
	$(BIN)/modelctl pipeline iris_classifier --env staging

demo-stop: $(STAMP) ## stop the demo's local staging deployment
	$(BIN)/modelctl undeploy iris_classifier --env staging

clean: ## remove environments, caches, reports and local state (stop deployments first: make demo-stop)
	rm -rf $(VENV) .tox reports .modelctl .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
