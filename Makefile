# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test test-fast lint bench

install: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/install.sh "$(PYTHON)" "$(VENV)" "$(TORCH_SPEC)"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/omnisift demo $(ARGS)

test: $(STAMP)
	bash scripts/run-tests.sh $(ARGS)

test-fast: $(STAMP)  # the in-process tier: no Ray Serve, no RTSP server, under 90 s
	bash scripts/run-tests.sh -m "not e2e" $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.compressor
