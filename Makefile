# The two commands of the quick start. Both bootstrap uv when the machine lacks it.
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

.PHONY: demo test deps dev bench lint

demo:  ## Run the main job on the embedded default (receiver, mock API, Kafka, Dagster; all local).
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) run ingest demo

test:  ## Install what the tests need, then run every tier this machine supports (e2e on a local cluster).
	bash .ci/test

deps:
	bash .ci/install-deps

lint:  ## ruff (lint and format check) and mypy; part of `make test`.
	bash .ci/lint

dev:  ## Dagster UI + daemon, webhook receiver, mock API and Kafka; Ctrl-C stops all.
	$(UV) run ingest dev
