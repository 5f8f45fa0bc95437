# Automation rule engine for Apache Airflow: developer entry points. `make` alone lists them.
#
# Everything runs from the repo's .venv (created by `make venv`); Airflow state lives in .airflow/
# (scripts/airflow-env.sh). Override the interpreter that creates the venv with PYTHON=...

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := .venv
# The stamp's name carries a hash of everything the venv is built from, so `make venv` reinstalls
# exactly when requirements*.txt or pyproject.toml change, and is instant otherwise.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)

.PHONY: help venv lint test run demo-reset clean ui

# `make run PORT=8081`: the API server (UI, REST view) on another port, demo and all. The same as
# AIRFLOW__API__PORT=8081 in the environment; scripts/airflow-env.sh derives the rest from it.
ifdef PORT
export AIRFLOW__API__PORT := $(PORT)
endif

help: ## list the targets
	@echo "Automation rule engine (Airflow 3.3.2). Targets:"
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-12s %s\n", $$1, $$2}'
	@echo
	@echo "Shell with the same environment: source scripts/airflow-env.sh  (then: airflow dags list)"

venv: $(STAMP) ## create .venv and install the pinned requirements + the project (instant when up to date)
	@:

$(STAMP):
	@scripts/make-venv.sh $(STAMP)

lint: venv ## ruff check, ruff format --check, mypy
	@scripts/check.sh lint

test: venv ## everything CI runs: Postgres up, lint, pytest -n 2 (PYTEST_ARGS="-k x" to narrow)
	@scripts/check.sh test

ui: ## build the pages (ui/) into plugins/rule_engine/ui_dist (needs Node.js 20+; commit the result)
	@cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build

run: venv ## migrate, load the demo (app DB, catalog, example rules), start airflow standalone on :8080 (PORT=8081: another port)
	@scripts/run-standalone.sh --check
	@scripts/setup-demo.sh
	@exec scripts/run-standalone.sh

demo-reset: venv ## demo app DB back to its seed data; re-apply the catalog and example rules
	@scripts/setup-demo.sh --reset

clean: ## remove local Airflow/rule-store state (.airflow/) and tool caches; keeps .venv
	@pid=$$(cat .airflow/standalone.pid 2>/dev/null | tr -dc '0-9' || true); \
	if [ -n "$$pid" ] && cat /proc/$$pid/cmdline 2>/dev/null | tr '\0' ' ' | grep -q standalone; then \
		echo "make clean: airflow standalone is running (pid $$pid): stop it first (Ctrl-C)." >&2; \
		exit 1; fi
	rm -rf .airflow .pytest_cache .mypy_cache .ruff_cache .hypothesis
	@if [ -n "$${AUTOMATION_STORE_URL:-}" ]; then \
		echo "note: AUTOMATION_STORE_URL is set; that rule store was not touched."; fi
