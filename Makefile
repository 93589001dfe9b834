# Quick start: `make run` (install, ingest the bundled chronology, replay it), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STORE ?= chron.db

.PHONY: run test lint bench clean

run: $(VENV)/.installed
	$(BIN)/chron --store $(STORE) ingest events/
	$(BIN)/chron --store $(STORE) replay

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .

bench: $(VENV)/.installed
	$(BIN)/python bench/run.py

$(VENV)/.installed: pyproject.toml chronology/_resolution.c chronology/_transcoder.c chronology/_fold.c chronology/_bestview.c chronology/_records.c chronology/_configure.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# Bytecode for the sources, which an editable install leaves to the first import (and
	# PYTHONDONTWRITEBYTECODE to none): every `chron` process and view-building helper starts sooner.
	$(BIN)/python -m compileall -q chronology plugins cli.py
	touch $@

clean:
	rm -rf $(VENV) $(STORE) $(STORE)-wal $(STORE)-shm
