VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lbgen-installed
DEMO   ?= out/demo

.PHONY: install demo test test-all bench clean
install: $(STAMP)
$(STAMP): pyproject.toml scripts/setup.sh
	VENV=$(VENV) bash scripts/setup.sh
	touch $(STAMP)
