# One place that installs what the project needs. `make test` is what CI runs.
VENV   ?= .venv
PYTHON ?= python3
PY      = $(VENV)/bin/python
# torch 2.13.0 is pinned in the same pip command as the project: a CPU build, no multi-GB CUDA download.
TORCH  ?= torch==2.13.0

.PHONY: install test mnist clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "$(TORCH)" -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest

mnist: install
	$(PY) training/train.py --config training/configs/mnist-6to9.toml

clean:
	rm -rf $(VENV) .pytest_cache
