#!/usr/bin/env bash
# Idempotent install into a venv: torch first (so nothing drags in a multi-GB CUDA build), then the package.
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
torch_spec=${3:-torch==2.13.0}

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
    "$venv/bin/pip" install --quiet "$torch_spec"
fi
"$venv/bin/pip" install --quiet -e ".[dev]"
