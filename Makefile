# flow: every target depends on the virtual environment, so a fresh clone needs only `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= 2
CONFIG ?= configs/digits_mlp.toml
DESIGN ?= hw/gen/digits_mlp
FUZZ_MINUTES ?= 30
CLUSTER ?=
# CLUSTER=local:N or tcp://host:port spreads the studies' trials and the synthesis/simulation jobs on Dask
WITH_CLUSTER = $(if $(CLUSTER),--cluster $(CLUSTER))

.PHONY: install test lint emit-rtl emit-bert sim fuzz-designs bench bench-sim bench-formats bench-hw bench-sim-engines bench-emit bench-train verify-designs lab0 lab1 lab2 lab3 lab4 baseline clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@command -v g++ >/dev/null || { echo "flow: g++ not found; install a C++ compiler (Debian: apt-get install g++)"; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) -q

lint: $(STAMP)
	$(VENV)/bin/ruff check flow sim tests benches
	$(VENV)/bin/lint-imports

emit-rtl: $(STAMP)
	$(VENV)/bin/flow emit-rtl --config $(CONFIG)

emit-bert: $(STAMP)
	$(VENV)/bin/flow emit-rtl --config configs/bert_tiny.toml

sim: $(STAMP)
	$(VENV)/bin/flow sim $(DESIGN)

fuzz-designs: $(STAMP)
	$(PY) -m tests.fuzz --minutes $(FUZZ_MINUTES) --workers $(JOBS) --summary results/fuzz/summary.json $(WITH_CLUSTER)

bench-sim: $(STAMP)
	$(PY) -m benches.bench_linear

bench-emit: $(STAMP)
	$(PY) -m benches.bench_emit

bench-formats: $(STAMP)
	$(PY) -m benches.bench_formats --steps 16   # results/bench/formats.json

bench-hw: $(STAMP)
	ulimit -s unlimited; $(PY) -m benches.bench_hw --json results/bench/bench_hw.json $(WITH_CLUSTER)

bench-sim-engines: $(STAMP)
	$(PY) -m benches.bench_sim_engines

verify-designs: $(STAMP)
	$(PY) -m benches.verify_designs $(WITH_CLUSTER)

bench-train: $(STAMP)
	$(PY) -m flow.labs.bench_train --threads 1 --eval

bench: bench-sim bench-emit bench-train

lab0: $(STAMP)
	$(PY) -m flow.labs.lab0 --preset full

lab4: $(STAMP)
	$(PY) -m flow.labs.lab4 --preset full

lab1: $(STAMP)
	$(PY) -m flow.labs.lab1 --preset full --task all --seeds 0,1,2 --threads 2

lab2: $(STAMP)
	$(PY) -m flow.labs.lab2 --preset full --task all --threads 1 --storage results/lab2/studies_full2.jsonl $(WITH_CLUSTER)

lab3: $(STAMP)
	$(PY) -m flow.labs.lab3 --preset full --task all --seeds 0,1,2 --threads 1 --no-progress $(WITH_CLUSTER)

baseline: $(STAMP)
	nice -n 10 $(PY) -m flow.labs.baseline --preset full --threads 1

clean:
	rm -rf hw/gen/* build .pytest_cache
