# Two commands do everything on a machine with Python 3.11 and pip:
#   make demo   create .venv, install agenttrace, run the sample agent under `agenttrace run`, show its run
#   make test   create .venv, install agenttrace with test dependencies, run the whole suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STORE := .agenttrace-demo

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,test-phoenix]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	rm -rf $(DEMO_STORE)
	@echo "== 1. A run that is done: agenttrace run audits it and exits 0 =="
	$(BIN)/agenttrace run --store $(DEMO_STORE) -- $(BIN)/python examples/research_agent.py
	@echo "== 2. The model stopped and the agent exited 0, but the answer was cut off: the run fails =="
	-$(BIN)/agenttrace run --store $(DEMO_STORE) -- $(BIN)/python examples/research_agent.py --model fake-truncating
	$(BIN)/agenttrace show last --store $(DEMO_STORE)

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

bench: $(VENV)/.installed-test
	for b in bench/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_STORE) .pytest_cache .ruff_cache
