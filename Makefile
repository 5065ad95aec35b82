# The README's two commands and the helpers around them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup main test lab ui benchmark notebooks clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# Main job: the four notebooks on real data (configs/default.yaml) into outputs/runs/default/.
main: setup
	$(PY) -m neo_ml.pipeline --config configs/default.yaml --run-name default

test: setup
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest

lab: setup
	$(PY) -m pip install --quiet -e ".[dev,lab]"
	$(VENV)/bin/jupyter lab notebooks/

# The MLflow UI on the embedded store (runs, curves, artifacts, registered models) at http://127.0.0.1:$(UI_PORT).
UI_PORT ?= 5000
ui: setup
	$(PY) -m neo_ml.tracking_ui --port $(UI_PORT)

# Re-execute the committed notebooks with their default parameters (their outputs are nbval's reference).
notebooks: setup
	$(PY) -m neo_ml.workbook refresh

benchmark: setup
	$(PY) -m neo_ml.benchmark ncf
	$(PY) -m neo_ml.benchmark classifier

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
