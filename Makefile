# Cadenza's everyday commands. `make setup` runs first for demo, test, lint and bench.
VENV := .venv
BIN := $(VENV)/bin
DEMO := build/demo
# Test processes: modules run side by side (each module's tests in one process, in order), as
# most tests wait on servers, ffmpeg and sockets rather than on the CPU. TEST_JOBS=0: one process.
TEST_JOBS ?= 2

.PHONY: setup demo test lint format bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(BIN)/cadenza bench demo --folder $(DEMO)

test: setup
	$(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadfile

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
