# The README's two commands: `make demo` (main job on the embedded model) and `make test`.
# Both create the virtual environment on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.zerocon-installed
# CPU build of torch that these machines keep on disk; any torch>=2.1 works for the library.
TORCH_SPEC ?= torch==2.13.0

.PHONY: demo serve test test-slow test-all dist wheel-check lint typecheck docs check benchmark train clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]" --config-settings editable_mode=compat
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/zerocon demo --out zerocon-demo

# The web demo on http://127.0.0.1:7860 (Ctrl-C stops it).
serve: $(STAMP)
	$(BIN)/zerocon serve

# Two workers (pytest-xdist), each test file on one of them: the 2-core machines' wall time halves.
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -q -p no:cacheprovider -n 2 --dist loadfile

# The tests marked slow (a cold mypy run on a user's script, ...): CI runs them after `make test`.
test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q -p no:cacheprovider -n 2 --dist loadfile

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check zerocon tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy zerocon

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

check: lint typecheck test

benchmark: $(STAMP)
	$(BIN)/python benchmarks/embedded_model_gates.py

train: $(STAMP)
	$(BIN)/python -m zerocon.shapes.train --out runs/shapes --export zerocon/shapes/weights

# The sdist and the wheel (the embedded model inside) in dist/.
dist: $(STAMP)
	rm -rf dist build
	$(BIN)/python -m build --outdir dist .

# The wheel installed into a fresh virtual environment (not editable), used from outside the repo.
wheel-check: dist
	bash .ci/wheel_check

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache zerocon-demo site dist build
