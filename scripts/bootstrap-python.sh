#!/usr/bin/env bash
# Creates .venv (Python 3.11+) with buildspec installed editable and the dev tools.
# Idempotent: reuses a venv whose buildspec install is current.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap-python: creating .venv" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.buildspec-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap-python: installing buildspec[dev]" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
