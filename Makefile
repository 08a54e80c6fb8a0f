# speech2video: the two commands a user needs are `make course` and `make test`.
# Both set everything up on first use (system package espeak-ng, .venv with pinned packages).

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PROFILE ?= course
RUN     ?= runs/$(PROFILE)
# CORPUS: an existing corpus folder (e.g. an ingested CREMA-D); empty = generate SynthTalk in the run
CORPUS  ?=
# SET: profile settings changed in every notebook, e.g. SET="features.n_mels=64 features.hop_ms=20"
SET     ?=
STAMP   := $(VENV)/.s2v-installed

.PHONY: setup course test test-fast bench report html clean-runs help

help:
	@echo "make course [PROFILE=smoke|workshop|course|paper] [RUN=runs/NAME] [CORPUS=DIR] [SET=\"features.n_mels=64 ...\"]  run notebooks 01-06 in order"
	@echo "make test                                                          install if needed, run the whole suite"
	@echo "make test-fast                                                     library tests only (no notebooks)"
	@echo "make bench                                                         print the benchmarks' figures"
	@echo "make report [RUN=runs/NAME]                                        the README's measured figures from RUN's metrics.json"
	@echo "make html [RUN=runs/NAME]                                          the run's executed notebooks as web pages (RUN/html)"

$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) PYTHON=$(PYTHON) bash scripts/setup.sh
	@touch $@

setup: $(STAMP)

course: $(STAMP)
	$(PY) -m s2v_lib course --profile $(PROFILE) --run $(RUN) $(if $(CORPUS),--corpus $(CORPUS)) $(foreach s,$(SET),--set $(s))

test: $(STAMP)
	$(PY) -m pytest

test-fast: $(STAMP)
	$(PY) -m pytest -m "not notebooks"

bench: $(STAMP)
	$(PY) benchmarks/bench_synthtalk.py
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_training.py
	$(PY) benchmarks/bench_inference.py
	$(PY) benchmarks/bench_generate.py

html: $(STAMP)
	$(PY) -m s2v_lib html $(RUN)

report: $(STAMP)
	$(PY) scripts/report.py $(RUN)

clean-runs:
	rm -rf runs/
