# Two commands set everything up on a fresh machine (Python 3.11 to 3.13: fer_utils.SUPPORTED_PYTHONS; git, make):
#   make book   build the executed HTML book on the embedded synthetic sample -> _build/html
#   make test   run the whole test suite (unit tests, notebook execution, built-book checks)
# Each target is a step of fer_book/steps.py, where the steps are defined once: `python -m fer_book book` runs the
# same (on Windows, which has no make). fer_book runs from this folder, the repository root, with the standard
# library alone; the steps then run in .venv.
PYTHON ?= python3
# make's variables become the steps' options: make book JOBS=1 CELL_TIMEOUT=3600 PARAMS="DATASET=ravdess DATA_DIR=/d"
# (EVERY_CELL=1: the experiment exercises too, the run of record of benchmarks/results/book_times.json)
STEP_OPTIONS = $(if $(JOBS),--jobs $(JOBS)) $(if $(CELL_TIMEOUT),--timeout $(CELL_TIMEOUT)) \
	$(if $(VENV),--venv $(VENV)) $(foreach p,$(PARAMS),--param $(p)) $(if $(EVERY_CELL),--every-cell)
STEPS := setup sample lint book unit-test book-test test release-check

.PHONY: help install $(STEPS) clean distclean
help:
	@echo "make book   - install, generate the sample, execute every notebook, build _build/html"
	@echo "make test   - install, lint and run the whole test suite (includes make book)"
	@echo "make release-check - the version, _config.yml, install cells and CHANGELOG.md agree (before tagging)"
	@echo "(each is \`python -m fer_book STEP\`: \`python -m fer_book --help\` lists every step)"

$(STEPS):
	$(PYTHON) -m fer_book $@ $(STEP_OPTIONS)

install: setup

clean:
	rm -rf _build

distclean: clean
	rm -rf .venv data/sample _cache
