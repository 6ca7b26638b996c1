# The two commands of the README: `make run` and `make test`. Everything else is a step of those.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
# Every target here runs a developer's platform: development secrets allowed (docs/security.md).
export ESCROW_ENV ?= development

.PHONY: setup browser run demo stop test unit lint typecheck asyncapi bench audit

setup:  ## the Python environment (installs uv if missing)
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	@$(UV) sync --frozen

run: setup  ## Kafka, the MongoDB-wire server and the SMTP server, the five services, then a demo trade
	@bash deploy/local/infra.sh up
	@bash deploy/local/services.sh up
	@.venv/bin/python deploy/local/demo.py

demo:  ## play one more trade against the running platform
	@.venv/bin/python deploy/local/demo.py

stop:  ## stop the services and the servers (data stays in .run/)
	@bash deploy/local/services.sh down
	@bash deploy/local/infra.sh down

browser:  ## Debian's chromium for the console's browser tests: installed when missing (needs root)
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "make browser: could not install chromium (not root?); the browser tests will be skipped (failed under CI)" >&2

test: setup browser lint typecheck  ## the checks, then every test, the saga ones on real Kafka, the MongoDB-wire server and SMTP
	@bash deploy/local/test.sh

unit: setup  ## the fast tests only
	@.venv/bin/pytest tests/unit -q

audit: setup  ## dependency audit against PyPI's vulnerability data; fails when it cannot check
	@bash deploy/local/audit.sh

lint: setup  ## ruff: errors, imports in the layering order, modern syntax (pyproject.toml [tool.ruff])
	@.venv/bin/ruff check

typecheck: setup  ## mypy --strict on shared/ and every domain module (pyproject.toml [tool.mypy])
	@.venv/bin/mypy

asyncapi: setup  ## regenerate docs/asyncapi.yaml from the code
	@.venv/bin/python -m services.asyncapi --write

bench: setup  ## figures, not tests: whole trades from outside at rising rates (bench/README.md; BENCH_ARGS=--quick)
	@bash deploy/local/infra.sh up
	@.venv/bin/python -m bench.trades $(BENCH_ARGS)
