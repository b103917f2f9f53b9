# Two commands set everything up on a fresh machine (Python 3.11 to 3.13: fer_utils.SUPPORTED_PYTHONS; git, make):
#   make book   build the executed HTML book on the embedded synthetic sample -> _build/html
#   make test   run the whole test suite (unit tests, notebook execution, built-book checks)
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SAMPLE := data/sample
# fer_book (the book-building tooling) is not installed: it runs from this folder, the repository root.
# Where the book's notebooks cache what they make (crops, trained models); see fer_utils/book/artifacts.py.
export FER_CACHE ?= $(CURDIR)/_cache
# 3: TensorFlow's C++ runtime logs nothing below FATAL (its spurious ERROR lines would land in the pages)
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONHASHSEED ?= 0
# Chapters executed, and test files run, side by side (the CI machine has 2 cores).
JOBS ?= 2
# Seconds one cell may run: chapter 7's training cell (nine runs, two chapters sharing 2 cores) took
# about 800 s on a fast 2-core machine; the default 900 left no margin for a slower one.
CELL_TIMEOUT ?= 1800

.PHONY: help install sample execute book lint test unit-test book-test assign release-check clean distclean
help:
	@echo "make book   - install, generate the sample, execute every notebook, build _build/html"
	@echo "make test   - install, lint and run the whole test suite (includes make book)"
	@echo "make release-check - the version, _config.yml, install cells and CHANGELOG.md agree (before tagging)"

$(STAMP): requirements.txt requirements-peer.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-peer.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

install: $(STAMP)

$(SAMPLE)/.complete: $(STAMP)
	$(PY) -m fer_utils sample --out $(SAMPLE)
	touch $@

sample: $(SAMPLE)/.complete

# Chapter parameters for every notebook, e.g. make book PARAMS="DATASET=ravdess DATA_DIR=/data/ravdess"
PARAMS ?=
# The machine's speed is measured before and after the chapters (fer_book/calibrate.py): a book time comes
# with the speed of the machine while it ran.
execute: sample
	mkdir -p _build/stage
	$(PY) fer_book/calibrate.py --out _build/stage/calibration.json
	$(PY) -m fer_book execute --out _build/stage --jobs $(JOBS) --timeout $(CELL_TIMEOUT) $(foreach p,$(PARAMS),--param $(p))
	$(PY) fer_book/calibrate.py --out _build/stage/calibration.json --append

book: execute
	$(PY) -m fer_book build --stage _build/stage --out _build

unit-test: sample
	$(PY) -m pytest -n $(JOBS) --dist worksteal -m "not book"

book-test: book
	$(PY) -m pytest -m book

# Lint and format check of the package, the tooling, the tests and the chapters (configuration in pyproject.toml).
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(VENV)/bin/actionlint .github/workflows/*.yml

# Before tagging v<version>: the version, _config.yml's branch, the install cells and CHANGELOG.md agree.
release-check: install
	$(PY) -m fer_book release --check

test: sample lint
	$(MAKE) book
	$(PY) -m pytest -n $(JOBS) --dist worksteal --durations=15

assign: install
	$(PY) -m fer_book assign --out _build/assign

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV) $(SAMPLE) _cache
