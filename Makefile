# Siyu: the two commands that matter are `make run` and `make test`. Everything installs itself on first use.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGES := shared/pyproject.toml devstack/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: install run test unit lint format bench schemas manifests stack clean fuzz

install: $(STAMP)

$(STAMP): constraints.txt requirements-dev.txt $(PACKAGES)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -r requirements-dev.txt
	@touch $(STAMP)

## Start the local stack (embedded PostgreSQL + Kafka), all four services, replay the demo; Ctrl-C stops all.
run: install
	$(BIN)/siyu-stack run

## Lint, then unit and integration tests against a stack the tests start themselves.
test: lint
	$(BIN)/python deploy/tools.py
	$(BIN)/pytest

## Fast tests only, of every package (no Postgres, no Kafka): about a minute.
unit: install
	$(BIN)/python deploy/tools.py
	$(BIN)/pytest -m "not integration and not e2e"

## The API fuzzer alone, longer and with a random seed (printed on failure): FUZZ_EXAMPLES, FUZZ_SECONDS, FUZZ_SEED.
fuzz: install
	SIYU_FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-100} SIYU_FUZZ_SECONDS=$${FUZZ_SECONDS:-30} \
	SIYU_FUZZ_SEED=$${FUZZ_SEED:-$$(shuf -i 1-2000000000 -n 1)} $(BIN)/pytest tests/fuzz -p no:cacheprovider -rA

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy shared/src devstack/src services/ingest/src services/segmentation/src services/journey/src services/attribution/src bench deploy/render.py deploy/tools.py
	$(BIN)/python deploy/render.py --check
	$(BIN)/siyu-schemas --out schemas/events --asyncapi schemas/asyncapi.yaml --check

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Regenerate the published JSON Schemas from the event models.
schemas: install
	$(BIN)/siyu-schemas --out schemas/events --asyncapi schemas/asyncapi.yaml

## Regenerate docker-compose.yml and deploy/k8s/base from the code (settings, topics, services).
manifests: install
	$(BIN)/python deploy/render.py

bench: install
	$(BIN)/python -m bench $(SUITES)

## Only the stack (Postgres + Kafka), printing the environment to use it from another shell.
stack: install
	$(BIN)/siyu-stack up

clean:
	-$(BIN)/siyu-stack clean
	rm -rf .state/stacks
