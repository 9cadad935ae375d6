# `make test` and `make convert ...` create the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCE ?= uncased_L-12_H-768_A-12
OUTPUT ?= checkpoints/converted/$(notdir $(SOURCE))

.PHONY: setup test test-all convert clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

# One pip call for both files, so the test packages cannot undo a runtime pin.
$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(PY) -m pip install -r requirements.txt -r requirements-test.txt
	touch $@

setup: $(VENV)/.runtime

test: $(VENV)/.test
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: $(VENV)/.test
	$(PY) -m pytest --runslow $(PYTEST_ARGS)

convert: $(VENV)/.runtime
	$(PY) -m bert_keras.convert $(SOURCE) $(OUTPUT) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
