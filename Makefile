# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench services-deps install clean messages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## make run: install, migrate, seed the demo and serve on SQLite (no other service needed)
run: $(STAMP)
	$(BIN)/switchboard migrate
	$(BIN)/switchboard serve --demo

## make test: install what the tests need (Debian packages when root), then lint and run every test
test: $(STAMP) services-deps
	$(MAKE) lint
	$(BIN)/pytest -q

services-deps:
	@./.ci/install-services

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

## make bench: figures of the embedded gateway; ARGS="--scale-out" (or "--mode embedded,scale-out") for the cluster
bench: $(STAMP)
	$(BIN)/python -m bench $(ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

## make messages: re-extract the server texts (gettext / ngettext / N_ calls) into inbox/locale/*/messages.po
messages: $(STAMP)
	mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg --no-location --omit-header --sort-output -o var/messages.pot inbox routing bots gateway channels
	$(BIN)/pybabel update -i var/messages.pot -d inbox/locale -D messages --no-wrap --ignore-obsolete -N
