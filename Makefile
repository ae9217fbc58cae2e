# Generalization Lab. `make lab` opens the course; `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export LABUTILS_PROFILE ?= fast
# Extra JupyterLab options, e.g. `make lab LAB_ARGS="--no-browser --port 8899"`.
# Jupyter refuses to run as root (containers, some cloud VMs) unless told to.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

.PHONY: help lab test unit notebooks data execute timings student readme clean

help:
	@echo "make lab      create .venv if needed and open JupyterLab on notebooks/"
	@echo "make test     create .venv if needed; run unit tests and every notebook (nbval)"
	@echo "make data     download and verify every dataset into the cache (offline workshops)"
	@echo "make execute  re-execute the notebooks in place (fast profile) so outputs match the code"
	@echo "make timings  run each notebook (saving its outputs), record wall times, re-render the README"
	@echo "make student  write exercise copies without solutions to student/"

# The environment is (re)installed only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

test: $(STAMP)
	$(BIN)/python -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=1200 --sanitize-with tests/nbval_sanitize.cfg

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(BIN)/python -m pytest $(NOTEBOOKS) --nbval-lax --nbval-current-env \
		--nbval-cell-timeout=1200 --sanitize-with tests/nbval_sanitize.cfg

data: $(STAMP)
	$(BIN)/python -m labutils.data

execute: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=1200 $(NOTEBOOKS)

timings: $(STAMP)
	$(BIN)/python -m labutils.catalog timings

student: $(STAMP)
	$(BIN)/python -m labutils.student --source notebooks --output student

readme: $(STAMP)
	$(BIN)/python -m labutils.catalog readme

clean:
	rm -rf student .pytest_cache
