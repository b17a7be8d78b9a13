# Two commands do everything on a machine with Python 3.11 and pip:
#   make demo   create .venv, install agenttrace, run the sample agent under `agenttrace run` with an
#               objective, show its run and write the failing run's report (demo-report.html); the runs go
#               to ./.agenttrace, the default store, so that after
#               `. .venv/bin/activate` the README's commands (`agenttrace runs`, ...) find them
#   make test   create .venv, install agenttrace with test dependencies and the CLI coding agents
#               (`make agents`: npm, Node.js >= 20) and Debian's Chromium (`make browser`), run the
#               whole suite

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_STORE := .agenttrace

.PHONY: demo test lint bench clean browser tools

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

# --no-compile: pip byte-compiles every file of every package it installs (Phoenix's among them),
# 35 of the 76 s the install takes; Python compiles what the tests import, once, when they do.
$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,test-phoenix]'
	touch $@ $(VENV)/.installed

DEMO_RUN := $(BIN)/agenttrace run --store $(DEMO_STORE) --objective examples/objective.toml --

# The store is not emptied first: it is the default one, and may hold runs of yours.
demo: $(VENV)/.installed
	rm -f demo-answer.md
	@echo "== 1. A run that is done: the objective is verified, every gate passes, exit 0 =="
	$(DEMO_RUN) $(BIN)/python examples/research_agent.py --report demo-answer.md
	@echo "== 2. The model stopped and the agent exited 0, but the answer was cut off: the run fails =="
	@echo "$(DEMO_RUN) $(BIN)/python examples/research_agent.py --report demo-answer.md --model fake-truncating"
	@$(DEMO_RUN) $(BIN)/python examples/research_agent.py --report demo-answer.md --model fake-truncating; \
	status=$$?; if [ $$status -eq 1 ]; then echo "(agenttrace run exited 1: this run is not done, as it should be)"; \
	else echo "make demo: expected agenttrace run to exit 1 for the cut-off answer, it exited $$status" >&2; exit 1; fi
	$(BIN)/agenttrace show last --store $(DEMO_STORE)
	@echo "== 3. The failing run as one self-contained HTML page: open it in a browser =="
	$(BIN)/agenttrace report last --store $(DEMO_STORE) -o $(CURDIR)/demo-report.html

test: $(VENV)/.installed-test agents browser tools
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/python -m pytest -q -n auto --dist loadscope

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples

bench: $(VENV)/.installed-test
	for b in bench/*.py; do $(BIN)/python $$b --quick || exit 1; done

clean:  # the store (.agenttrace) holds your runs: remove it yourself if you mean to
	rm -rf $(VENV) demo-answer.md demo-report.html .pytest_cache .ruff_cache

# make browser: the report's tests (tests/test_report_browser.py) open it in Debian's Chromium,
# driven by Playwright from the test extra; no browser is ever downloaded (no `playwright install`).
# Nothing to do when /usr/bin/chromium is there; else apt-get installs it (CI runs as root on Debian).
CHROMIUM := /usr/bin/chromium

browser:
	@if [ -x $(CHROMIUM) ]; then exit 0; fi; \
	command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium && \
		[ -x $(CHROMIUM) ] || { echo "make browser: $(CHROMIUM) is missing and apt-get could not \
	install it: install Debian's chromium package (as root: apt-get install chromium)" >&2; exit 1; }

# make tools: the other Debian package the tests drive: strace (tests/test_analysis_resolve.py sees
# which files of the store a command opens). Nothing to do when it is there; else apt-get installs it.
tools:
	@if command -v strace >/dev/null; then exit 0; fi; \
	command -v apt-get >/dev/null && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace && \
		command -v strace >/dev/null || { echo "make tools: strace is missing and apt-get could not \
	install it: install Debian's strace package (as root: apt-get install strace)" >&2; exit 1; }

# make agents: the real CLI coding agents (Claude Code, Codex, Gemini CLI) from npm, pinned in
# tests/agents/package.json and package-lock.json, installed into .agents/node_modules
# (git-ignored; `npm ci` from the lock file, `npm install` writing it back when there is none).
# Runs npm only when the install is missing or a pinned file changed. Needs node >= 20 and npm.
AGENTS_DIR := .agents
AGENTS_STAMP := $(AGENTS_DIR)/node_modules/.agenttrace-installed
AGENTS_PINS := tests/agents/package.json $(wildcard tests/agents/package-lock.json)

.PHONY: agents

agents: $(AGENTS_STAMP)

$(AGENTS_STAMP): $(AGENTS_PINS)
	@command -v npm >/dev/null || { echo "make agents: npm not found (install Node.js >= 20 with npm)" >&2; exit 1; }
	mkdir -p $(AGENTS_DIR)
	cp tests/agents/package.json $(AGENTS_DIR)/package.json
	if [ -f tests/agents/package-lock.json ]; then \
		cp tests/agents/package-lock.json $(AGENTS_DIR)/package-lock.json && \
		cd $(AGENTS_DIR) && npm ci --no-audit --no-fund --loglevel=error; \
	else \
		rm -f $(AGENTS_DIR)/package-lock.json && \
		(cd $(AGENTS_DIR) && npm install --no-audit --no-fund --loglevel=error) && \
		cp $(AGENTS_DIR)/package-lock.json tests/agents/package-lock.json; \
	fi
	touch $@
