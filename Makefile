# Two commands on a fresh machine:  `make demo` (install + main job)  and  `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --quiet -c constraints.txt

.PHONY: install dev demo test results fuzz fuzz-data fuzz-codegen lint fmt schema bench tune

$(BIN)/netspec: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch
	$(PIP) -e '.[data,plot,vision]' --config-settings editable_mode=compat  # a path entry: no import hook to load at start-up
	@touch $@

install: $(BIN)/netspec

$(VENV)/.dev: $(BIN)/netspec
	$(PIP) -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

dev: $(VENV)/.dev

# The main job on the embedded default data (scikit-learn's digits): check, summarize, build, train.
demo: install
	$(BIN)/netspec check specs/digits_cnn.yaml
	$(BIN)/netspec summarize specs/digits_cnn.yaml
	$(BIN)/netspec build specs/digits_cnn.yaml -o build/digits_cnn --force
	$(BIN)/netspec train specs/digits_cnn.yaml -o runs/digits_cnn --force

# ruff, then the type checker: strict on ir/ ops/ passes/ spec/, basic elsewhere (docs/architecture.md).
lint: dev
	$(BIN)/ruff check netspec tests bench
	$(BIN)/ruff format --check netspec tests bench
	$(BIN)/basedpyright

test: lint
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -p no:cacheprovider  # 2 workers x 1 thread: no oversubscription

# The README's accuracy table, seeds 0-2 of each spec (about 10 minutes on 2 cores).
results: dev
	$(BIN)/python -m pytest -p no:cacheprovider -m results tests/test_results.py

# A long mutation-fuzzing campaign over specs/ (about 2 minutes for 20,000 cases on 2 cores); crashes
# and hangs land in tests/fuzz_corpus/, which the test suite replays.
FUZZ_CASES ?= 20000
FUZZ_SEED ?= 1
fuzz: dev
	$(BIN)/python -W ignore -m tests.fuzz --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --jobs 2

# The data-file fuzzer (lying .npz headers, bombs, malformed CSV and .ts; about 1 minute for 10,000
# cases) and the code-generation fuzzer (hostile strings in every spec string; about 6 minutes for
# 10,000): failing cases land in tests/fuzz_corpus/ too (docs/reliability.md).
FUZZ_DATA_CASES ?= 10000
fuzz-data: dev
	OMP_NUM_THREADS=1 $(BIN)/python -W ignore -m tests.fuzz_data --cases $(FUZZ_DATA_CASES) --seed $(FUZZ_SEED)

FUZZ_CODEGEN_CASES ?= 10000
fuzz-codegen: dev
	OMP_NUM_THREADS=1 $(BIN)/python -W ignore -m tests.fuzz_codegen --cases $(FUZZ_CODEGEN_CASES) --seed $(FUZZ_SEED)

# The benchmark suite (docs/benchmarks.md): each figure a ratio against a baseline measured in the
# same run, about 7 minutes on 2 cores; installs its baselines (torchinfo, lightning, matplotlib).
# `make bench BENCH_ARGS=--quick`: a 2-minute smoke run written to build/bench-quick/.
BENCH_ARGS ?=
bench: install
	$(PIP) -e '.[bench]' --config-settings editable_mode=compat
	$(BIN)/python -m bench $(BENCH_ARGS)

# A structure search over digits_cnn (width, depth, kernel, dropout, lr; under 50,000 params), two
# processes on one SQLite study, done within 10 minutes -> runs/tune-digits/best.yaml (docs/tune.md).
tune: dev
	$(BIN)/netspec tune specs/digits_cnn_tune.yaml -o runs/tune-digits --jobs 2

fmt: dev
	$(BIN)/ruff format netspec tests bench

# Regenerate the checked-in files derived from the registry (a test fails when they are stale).
schema: install
	$(BIN)/netspec schema > schemas/netspec.schema.json
	$(BIN)/python -m netspec.docs > docs/layers.md
	$(BIN)/python -m netspec.docs --train > docs/train.md
