# The commands people run. `make run` starts the assistant; `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
JXA := $(VENV)/bin/jxa
PYTEST_ARGS ?=

.PHONY: setup models index run serve chat test test-fast lint eval eval-quick bench hardening clean

setup:
	@scripts/setup.sh

models: setup
	@$(JXA) models

index: setup
	@$(JXA) index build

run: models index
	@$(JXA) serve

chat: models index
	@$(JXA) chat

# The whole suite, then the evaluation gate: the quick subset with the real models must meet
# eval/thresholds.json (replies cached by model, prompt and evidence hashes in eval/answer-cache.jsonl).
test: models index
	@scripts/browser.sh
	@scripts/postgres.sh
	$(VENV)/bin/ruff check assistant tests
	$(PY) -m pytest $(PYTEST_ARGS)
	$(JXA) eval --quick --gate --no-baseline
	$(JXA) hardening --fake

test-fast: setup
	$(PY) -m pytest -m "not model and not browser and not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check assistant tests

eval: models index
	$(JXA) eval

eval-quick: models index
	$(JXA) eval --quick

bench: models index
	$(JXA) bench search
	$(JXA) bench answer

# Load, faults and hostile input against a real local server (fake models, < 3 min); the figures
# with the real models: `jxa hardening` (slower, fewer requests).
hardening: setup
	$(JXA) hardening --fake

clean:
	rm -rf .venv var eval/reports/*.tmp test-artifacts
