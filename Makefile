# The two commands of README.md: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints.txt
PY := $(VENV)/bin/python
STAMP := $(VENV)/.skmm-installed

.PHONY: setup demo test test-fast lint bench docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(CONSTRAINTS) -e ".[text,vision,plot,test]"
	touch $@

demo: setup
	$(PY) examples/quickstart.py

lint: setup
	$(PY) -m ruff check .

test: lint
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not slow"

bench: setup
	for script in benchmarks/bench_*.py; do $(PY) $$script || exit 1; done

# The documentation site, warnings as errors: docs/_build/html/index.html
docs: setup
	$(PY) -m sphinx -b html -W --keep-going docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
