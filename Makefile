# Two commands for a fresh machine (Python 3.11 and the package registries are enough):
#   make check   set up .venv, then check every bundled reference model on 2 cores and print a summary
#   make test    set up .venv, then run the test suite on 2 cores
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: check test bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# constraints.txt pins torch==2.13.0, the CPU build, so no multi-GB CUDA build is pulled.
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

check: $(VENV)/.installed
	$(PY) -m dyncheck reference_models -n 2

# worksteal: an idle worker takes tests the other has queued (with the default "load", one
# worker finished about 20 s before the other). Bytecode is written even where the machine
# turns it off (PYTHONDONTWRITEBYTECODE): the suite starts dozens of interpreters, and each
# compiled dyncheck and had pytest rewrite Hypothesis's modules anew (about 12% of the run).
# A test that rewrites a module in place sets sys.dont_write_bytecode (docs/development.md).
test: $(VENV)/.installed
	env -u PYTHONDONTWRITEBYTECODE $(PY) -m pytest -n 2 --dist worksteal tests

# Measurements, not tests (minutes; run on an idle machine): see benchmarks/RESULTS.md.
bench: $(VENV)/.installed
	$(PY) -m benchmarks.detection
	$(PY) -m benchmarks.overhead
	$(PY) -m benchmarks.scaling

clean:
	rm -rf $(VENV) .hypothesis .pytest_cache
