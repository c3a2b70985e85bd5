# Helpline: `make run` and `make test` set up whatever is missing first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
MODELS := var/models
DEPS   := requirements.txt requirements-nodeps.txt setup.cfg pyproject.toml
STAMP  := $(VENV)/.installed

.PHONY: setup setup-rasa run test lint typecheck pytest models rasa-sdk-venv genai-venv system-packages clean

setup: $(STAMP) genai-venv models rasa-sdk-venv

$(STAMP): $(DEPS)
	@echo "==> Creating $(VENV) and installing packages"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(BIN)/pip install -q --disable-pip-version-check --no-deps -e .
	touch $@

models: $(STAMP) genai-venv
	@$(BIN)/helpline nlu prepare --cache $(MODELS)
	@$(BIN)/helpline model prepare --quant int4 --builder genai --cache $(MODELS)/llm

rasa-sdk-venv:
	@bash scripts/setup-rasa-sdk-venv.sh

# Rasa Open Source 3.6 (Python 3.10, TensorFlow; about 2.7 GB) for the Rasa NLU
# backend and the rasa-sdk 3.6 action-server tests. Not needed by the embedded NLU.
setup-rasa:
	@bash scripts/setup-rasa-venv.sh

# onnxruntime-genai's model builder needs transformers 5, so it gets its own venv.
genai-venv:
	@bash scripts/setup-bench-peers.sh genai

# Chromium and Dovecot, which the browser and IMAP tests drive (not needed to run).
system-packages:
	@bash scripts/setup-system-packages.sh

run: setup
	@if $(BIN)/helpline rasa wanted; then $(MAKE) --no-print-directory setup-rasa; fi
	$(BIN)/helpline run

lint: $(STAMP)
	$(BIN)/ruff check bot connectors llm tests flows
	$(BIN)/ruff format --check bot connectors llm tests flows

typecheck: $(STAMP)
	$(BIN)/mypy bot connectors llm flows/actions.py

pytest: setup setup-rasa system-packages
	$(BIN)/pytest

test: setup lint typecheck pytest

clean:
	rm -rf $(VENV) .venv-rasa .venv-rasa-sdk .venv-genai var .mypy_cache .ruff_cache
