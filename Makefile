# Cadenza's everyday commands. `make setup` runs first for demo, test, lint and bench.
VENV := .venv
BIN := $(VENV)/bin
DEMO := build/demo

.PHONY: setup demo test lint format bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/cadenza bench demo --folder $(DEMO)

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: setup
	$(BIN)/cadenza bench encode

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache
