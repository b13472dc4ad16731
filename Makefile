# vniahd — common tasks. `make setup` builds .venv from nothing; other targets reuse it.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
export OMP_NUM_THREADS ?= 2

.PHONY: setup demo test test-all bench tiny-acceptance lint clean

$(BIN)/vniahd:
	$(MAKE) setup

# torch==2.13.0 first: on these machines it is a local CPU wheel; an unpinned torch would pull
# gigabytes of CUDA packages (docs/footguns.md). No `pip check`: decord's wheel metadata fails it.
setup:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	@$(BIN)/vniahd --help > /dev/null && echo "setup done: $(VENV) ready"

demo: $(BIN)/vniahd
	$(BIN)/vniahd demo --out results/demo

test: $(BIN)/vniahd
	$(BIN)/python -m pytest -q -ra

test-all: $(BIN)/vniahd
	$(BIN)/python -m pytest -q -ra -m "slow or not slow"

bench: $(BIN)/vniahd
	$(BIN)/python bench/eval_prefix.py
	$(BIN)/python bench/generate.py
	$(BIN)/python bench/gpu_scale.py
	$(BIN)/python bench/family_throughput.py
	$(BIN)/python bench/family_throughput.py --gpu
	$(BIN)/python bench/encoder_probe.py

tiny-acceptance: $(BIN)/vniahd
	$(BIN)/python -m pytest -q -s -ra -m slow tests/test_tiny_acceptance.py

# Static checks (config in pyproject.toml; .pre-commit-config.yaml runs the first three), then
# README.md's Python example type-checked as a user's code against the installed package.
LINT_PATHS := vniahd tests bench scripts
lint: $(BIN)/vniahd
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy
	$(BIN)/python scripts/check_readme_types.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
