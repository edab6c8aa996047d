# Two commands a newcomer needs: `make demo` and `make test`.
# Both create .venv on first use and install what they need into it.

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
# Where torch comes from. Empty: pip's configured index. On Linux, PyPI's torch wheels are the
# (huge) CUDA builds: make TORCH_INDEX=https://download.pytorch.org/whl/cpu gives the CPU build.
TORCH_INDEX ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# Torch first, pinned (and from TORCH_INDEX if given): once it is installed no later
	# requirement pulls another build.
	$(BIN)/python -m pip install -q $(if $(TORCH_INDEX),--index-url "$(TORCH_INDEX)") "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hanformer run recipes/demo-ko.toml

test: $(STAMP)
	bash scripts/ensure-chromium.sh
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs build dist *.egg-info
