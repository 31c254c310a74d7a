# Two commands: `make run` and `make test`. Everything else is an implementation detail of these.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: run test train lint bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch first, pinned: the CPU wheel on disk; an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

models/.trained: $(STAMP) config.yml domain.yml $(wildcard data/*.yml)
	$(BIN)/gov-assistant train --project .
	touch $@

# The demo back office (where confirmed forms are submitted) runs beside the server and stops with it.
run: $(STAMP) models/.trained
	$(BIN)/python -m connectors.backoffice_demo --port 8765 & bo=$$!; \
	trap 'kill $$bo 2>/dev/null' EXIT INT TERM; \
	$(BIN)/gov-assistant serve --project .

test: $(STAMP)
	$(BIN)/python -m pytest -q

train: models/.trained

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python bench/nlu.py
	$(BIN)/python bench/kb.py
