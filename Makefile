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

.PHONY: help lab test unit notebooks notebooks-second-seed lint format claims lock site gpu-check data execute timings \
	student readme clean check-python

help:
	@echo "make lab      create .venv if needed and open JupyterLab on notebooks/"
	@echo "make test     create .venv if needed; unit tests, every notebook (nbval), and a second seed"
	@echo "make data     download and verify every dataset into the cache (offline workshops)"
	@echo "make execute  re-execute the notebooks in place (fast profile) so outputs match the code"
	@echo "make timings  run each notebook (saving its outputs), record wall times, re-render the README"
	@echo "make student  write exercise copies without solutions to student/"
	@echo "make lint     ruff over labutils/, tests/, experiments/ and the notebooks"
	@echo "make claims   run every notebook at seeds 0-9 and refresh notebooks/claims.json"
	@echo "make lock     re-resolve requirements.lock (needs uv: pip install uv)"
	@echo "make site     build the course website into build/site from the committed outputs"
	@echo "make gpu-check  one GPU run: the GPU SimCLR recipe, notebooks 08/10/12 in full, timings"

# Python 3.11 to 3.13: TensorFlow publishes no wheels for newer versions yet.
check-python:
	@$(PYTHON) -c 'import sys; ok = (3, 11) <= sys.version_info[:2] <= (3, 13); sys.exit(0 if ok else 1)' \
	|| { echo "Generalization Lab needs Python 3.11, 3.12 or 3.13 (TensorFlow has no wheels for" \
	     "$$($(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null || echo this one))." \
	     "Install one (python.org, your package manager, or 'uv python install 3.12')," \
	     "then run: make lab PYTHON=python3.12"; exit 1; }

# The environment is (re)installed only when pyproject.toml or the lock file is newer than the
# stamp: the pinned versions of requirements.lock first, then the course itself.
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || { $(MAKE) --no-print-directory check-python && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab $(LAB_ARGS) notebooks/

# nbval runs each notebook top to bottom in its own kernel; TEST_JOBS notebooks at once, each
# kernel on one CPU thread (two kernels that each spin up a thread per core slow each other
# down several times on a 2-core machine).
NBVAL := --nbval-lax --nbval-current-env --nbval-cell-timeout=1200 --nbval-sanitize-with tests/nbval_sanitize.cfg
TEST_JOBS ?= 2
PARALLEL = $(filter-out 0 1,$(TEST_JOBS))
NBVAL_JOBS = $(if $(PARALLEL),-n $(TEST_JOBS) --dist loadscope)
ONE_THREAD = $(if $(PARALLEL),LABUTILS_TORCH_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
	OPENBLAS_NUM_THREADS=1 TF_NUM_INTRAOP_THREADS=1)

# Unit tests, every notebook at seed 0, then the calibrated notebooks at a second seed.
test: $(STAMP)
	$(BIN)/python -m pytest tests
	$(ONE_THREAD) $(BIN)/python -m pytest $(NBVAL_JOBS) $(NOTEBOOKS) $(NBVAL)
	@$(MAKE) --no-print-directory notebooks-second-seed

lint: $(STAMP)
	$(BIN)/ruff check labutils tests experiments notebooks
	$(BIN)/ruff format --check labutils tests experiments
	$(BIN)/python -m labutils.hygiene --check $(NOTEBOOKS)

format: $(STAMP)
	$(BIN)/ruff format labutils tests experiments
	$(BIN)/python -m labutils.hygiene $(NOTEBOOKS)

claims: $(STAMP)
	$(BIN)/python -m labutils.claims run --seeds $(or $(SEEDS),0-9) --jobs $(or $(JOBS),1)

lock:
	uv pip compile pyproject.toml --extra test --extra docs --universal --python-version 3.11.5 \
		-o requirements.lock

site: $(STAMP)
	$(BIN)/python -m labutils.site build

gpu-check: $(STAMP)
	$(BIN)/python -m labutils.gpu_check $(GPU_CHECK_ARGS)

unit: $(STAMP)
	$(BIN)/python -m pytest tests

notebooks: $(STAMP)
	$(ONE_THREAD) $(BIN)/python -m pytest $(NBVAL_JOBS) $(NOTEBOOKS) $(NBVAL)

# A second seed for the notebooks, derived from the commit so that every commit tries another
# one; printed first, so a failure can be rerun with LABUTILS_SEED=<seed>.
SECOND_SEED = $(shell git rev-parse HEAD 2>/dev/null | cut -c1-6 | $(PYTHON) -c \
	'import sys; text = sys.stdin.read().strip(); print(int(text, 16) % 997 + 1 if text else 1)')

# The notebooks whose claims are calibrated over seeds (listed in notebooks/claims.json).
CALIBRATED = $(shell $(PYTHON) -c 'import json; claims = json.load(open("notebooks/claims.json"))["claims"]; \
	print(" ".join(sorted({"notebooks/" + entry["notebook"] for entry in claims.values()})))' 2>/dev/null)

notebooks-second-seed: $(STAMP)
	@echo "calibrated notebooks at a second seed derived from the commit: LABUTILS_SEED=$(SECOND_SEED)"
	@echo "(rerun a failure with: make notebooks-second-seed SECOND_SEED=$(SECOND_SEED))"
	$(if $(CALIBRATED),LABUTILS_SEED=$(SECOND_SEED) $(ONE_THREAD) $(BIN)/python -m pytest $(NBVAL_JOBS) \
		$(CALIBRATED) $(NBVAL),\
		@echo "no notebook has calibrated claims yet")

data: $(STAMP)
	$(BIN)/python -m labutils.data

execute: $(STAMP)
	$(BIN)/jupyter nbconvert --to notebook --execute --inplace \
		--ExecutePreprocessor.timeout=1200 \
		--ExecutePreprocessor.extra_arguments="['--IPKernelApp.capture_fd_output=False']" $(NOTEBOOKS)
	$(BIN)/python -m labutils.hygiene $(NOTEBOOKS)

timings: $(STAMP)
	$(BIN)/python -m labutils.catalog timings

student: $(STAMP)
	$(BIN)/python -m labutils.student --source notebooks --output student

readme: $(STAMP)
	$(BIN)/python -m labutils.catalog readme

clean:
	rm -rf student .pytest_cache
