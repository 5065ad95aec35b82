# The README's two commands and the helpers around them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup main test lint benchmark clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Main job: train NCF on MovieLens-100k and benchmark it against its baselines.
main: setup
	$(PY) -m neo_ml.train_ncf --data ml-100k --output models/ncf_benchmark_v1.pt
	$(PY) -m neo_ml.benchmark ncf

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest

benchmark: setup
	$(PY) -m neo_ml.benchmark ncf

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
