# Set-up and the two commands of README.md.  `make verify` runs the main job, `make test` the suite.
# Both create .venv and install everything on first use.
#
# torch: TORCH_SPEC defaults to the CPU build that lies on these machines' disk.  Elsewhere, point it at
# your own build, e.g. `make test TORCH_SPEC="torch==2.5.1" TORCH_PIP_ARGS="--index-url <your index>"`,
# or `make test TORCH_SPEC=` to keep whatever torch the venv already has.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup verify test test-slow lint bench docs mutate mutate-summary

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH_SPEC)" ] && ! $(PY) -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC)"; \
		$(PY) -m pip install -q "$(TORCH_SPEC)" $(TORCH_PIP_ARGS); \
	fi
	$(PY) -m pip install -q -e ".[test,plot]"
	touch $(STAMP)

verify: $(STAMP)
	$(VENV)/bin/unroll verify

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy unroll theory
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

BENCHMARKS ?= benchmarks/score_speed.py benchmarks/attention_speed.py benchmarks/scaling.py benchmarks/float32_certificate.py \
	benchmarks/unrolled_solvers.py benchmarks/chebyshev_stability.py benchmarks/long_sequences.py benchmarks/peers.py

bench: $(STAMP)
	for script in $(BENCHMARKS); do echo "== $$script"; $(PY) $$script || exit 1; done

# the documentation site into site/ (git-ignored); strict: a broken link, anchor or docstring section fails it.
# Quiet (warnings and errors only), so that CI's output still closes on pytest's summary line.
DOCS_STAMP := $(VENV)/.installed-docs

$(DOCS_STAMP): $(STAMP)
	@$(PY) -m pip install -q -e ".[docs]"
	@touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet -d site

# Mutation testing (slow, outside the default suite): mutmut over the core modules, one worker by default, then a
# summary (killed / survived / timeout per module, the survivors listed).  One changed file only:
# `make mutate MUTATE_FILES=unroll/construction/gd.py`.  Results accumulate in mutants/ (git-ignored).
MUTATE_FILES ?=
MUTATE_JOBS ?= 1
# e.g. MUTATE_ARGS="--sample 50 --seed 0": a seeded random sample of each file's mutants
MUTATE_ARGS ?=
MUTATE_STAMP := $(VENV)/.installed-mutate

$(MUTATE_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[test,plot,mutate]"
	touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	OMP_NUM_THREADS=1 $(PY) tools/mutate.py run --jobs $(MUTATE_JOBS) $(MUTATE_ARGS) $(MUTATE_FILES)

mutate-summary:
	$(PY) tools/mutate.py summary $(MUTATE_FILES)
