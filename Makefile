# One place that installs what the project needs. `make test` is what CI runs.
VENV      ?= .venv
OLAH_VENV ?= .venv-olah
PYTHON    ?= python3
PY         = $(VENV)/bin/python
# torch 2.13.0 is pinned in the same pip command as the project: a CPU build, no multi-GB CUDA download.
TORCH     ?= torch==2.13.0

.PHONY: install olah chromium lint format test mnist space-models drawn-digits clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet "$(TORCH)" -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# olah, an independent Hub mirror that the Hub tests read through, pins its own web stack: its own venv.
$(OLAH_VENV)/.installed:
	$(PYTHON) -m venv $(OLAH_VENV)
	$(OLAH_VENV)/bin/pip install --quiet olah
	touch $@

olah: $(OLAH_VENV)/.installed

# Debian's Chromium for the browser test of the Space (Playwright drives it; it downloads no browser).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (the browser test is skipped without it)"; fi; }

# The formatter and the linter (ruff, configured in pyproject.toml) run before the tests.
lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install olah chromium lint
	$(PY) -m pytest

# Starts the run again from scratch: a new run never mixes with an old one in runs/mnist-6to9.
mnist: install
	$(PY) training/train.py --config training/configs/mnist-6to9.toml --overwrite

# Ship a finished MNIST run as the Space's bundled pair (readable by everyone: a Space runs as another user).
space-models:
	rm -rf space/models/mnist-6to9 space/models/mnist-9to6
	cp -r runs/mnist-6to9/generator_AtoB space/models/mnist-6to9
	cp -r runs/mnist-6to9/generator_BtoA space/models/mnist-9to6
	chmod -R u=rwX,go=rX space/models

clean:
	rm -rf $(VENV) $(OLAH_VENV) .pytest_cache
