# Thin by design: each target is one script or one uv command.
SHELL := /bin/bash
UV := ./scripts/uv
PYTEST_ARGS ?=

.PHONY: sync fmt lint typecheck proto test test-e2e bench up down host

sync:                     ## install uv if missing, then the locked workspace
	@$(UV) sync --frozen --all-packages

fmt: sync
	@$(UV) run --no-sync ruff format .
	@$(UV) run --no-sync ruff check --fix .

lint: sync
	@$(UV) run --no-sync ruff format --check .
	@$(UV) run --no-sync ruff check .

typecheck: sync
	@$(UV) run --no-sync mypy libs/common/src libs/testing/src services/*/src cli/src

proto: sync               ## regenerate libs/api from proto/ (commit the result)
	@$(UV) run --no-sync python scripts/gen_proto.py

host:                     ## dockerd, gVisor (runsc) and the sandbox images, installed when absent
	@scripts/ensure-host.sh

test: sync host           ## the whole suite
	@$(UV) run --no-sync pytest $(PYTEST_ARGS)

test-e2e: sync host
	@$(UV) run --no-sync pytest tests/e2e $(PYTEST_ARGS)

bench: sync host
	@for b in bench/*.py; do echo "== $$b"; $(UV) run --no-sync python $$b || exit 1; done

up: sync host             ## run the whole platform in the foreground (Ctrl-C stops it)
	@$(UV) run --no-sync symbi up --demo

down:
	@$(UV) run --no-sync symbi down
