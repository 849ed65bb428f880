# The two commands a newcomer needs: `make demo` and `make test`. Each installs what it needs.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
TORCH_SPEC ?= torch==2.13.0

.PHONY: install system-packages demo test test-fast lint bench

install: $(STAMP)

$(STAMP): pyproject.toml
	bash scripts/install.sh "$(PYTHON)" "$(VENV)" "$(TORCH_SPEC)"
	touch $(STAMP)

system-packages:  # the Debian packages the tests need: installed as root, else the command is printed
	bash scripts/install-system-packages.sh

demo: $(STAMP)
	$(VENV)/bin/omnisift demo $(ARGS)

test: system-packages $(STAMP)
	bash scripts/run-tests.sh $(ARGS)

test-fast: system-packages $(STAMP)  # the in-process tier: no Ray Serve, no RTSP server, under 90 s
	bash scripts/run-tests.sh -m "not e2e" -n 2 --dist loadfile $(ARGS)  # modules on two workers

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(VENV)/bin/python -m benchmarks.compressor
