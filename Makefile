# lbgen: `make demo` and `make test` install everything they need first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
LBGEN  := $(VENV)/bin/lbgen
STAMP  := $(VENV)/.lbgen-installed
DEMO   ?= out/demo
PYTEST_ARGS ?=
# Test files run in parallel, one worker per core; a file stays on one worker so
# its module fixtures (builds, C-sims) are made once.
JOBS ?= $(shell nproc)
PYTEST_PAR := -n $(JOBS) --dist loadfile

.PHONY: install demo test test-all bench clean
install: $(STAMP)
$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)

# The main job on the shipped example: emit the w1a2 digits MLP, then prove it
# bit-exact in C-sim, Icarus and Verilator on the 360 test images.
demo: install
	$(LBGEN) emit examples/digits/digits_w1a2.pt --target fpga --w 1 --a 2 \
		--inputs examples/digits/digits_test.npz -o $(DEMO) --force
	$(LBGEN) sim $(DEMO) --simulator all
	$(LBGEN) report $(DEMO)

test: install
	$(PY) -m pytest -q $(PYTEST_PAR) $(PYTEST_ARGS)

test-all: install
	$(PY) -m pytest -q -m "" $(PYTEST_PAR) $(PYTEST_ARGS)

# LUT/FF/CARRY4 per lane of every PE engine (Yosys), figures in bench/results/.
bench: install
	@for f in bench/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean:
	rm -rf out build dist .pytest_cache sim_build
