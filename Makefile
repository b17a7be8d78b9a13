# Two commands do everything on a machine with Python 3.11 and pip:
#   make demo   create .venv, install agenttrace, run the sample agent under `agenttrace run` with an
#               objective, show its run
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

DEMO_RUN := $(BIN)/agenttrace run --store $(DEMO_STORE) --objective examples/objective.toml --

demo: $(VENV)/.installed
	rm -rf $(DEMO_STORE) demo-answer.md
	@echo "== 1. A run that is done: the objective is verified, every gate passes, exit 0 =="
	$(DEMO_RUN) $(BIN)/python examples/research_agent.py --report demo-answer.md
	@echo "== 2. The model stopped and the agent exited 0, but the answer was cut off: the run fails =="
	-$(DEMO_RUN) $(BIN)/python examples/research_agent.py --report demo-answer.md --model fake-truncating
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
	rm -rf $(VENV) $(DEMO_STORE) demo-answer.md .pytest_cache .ruff_cache
