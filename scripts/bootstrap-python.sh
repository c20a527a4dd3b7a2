#!/usr/bin/env bash
# Creates .venv (Python 3.11+) with buildspec installed editable and the dev tools.
# Idempotent: reuses a venv whose buildspec install is current and whose interpreter is the
# one chosen below (a venv made with another one is made again).
#
# The interpreter: $PYTHON if set; else the distribution's /usr/bin/python3 when it is 3.11+
# with venv (scripts/setup-env.sh installs python3-venv); else python3 on PATH. On these
# machines Debian's python3.11 runs buildspec with about 13% less CPU than the pyenv build
# that comes first on PATH (bench/README.md, "Which Python").
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    if /usr/bin/python3 -c 'import sys, ensurepip, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        PYTHON=/usr/bin/python3
    fi
fi
real_of() { "$1" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))'; }
want=$(real_of "$PYTHON")
if [ -x .venv/bin/python ] && [ "$(real_of .venv/bin/python)" != "$want" ]; then
    echo "bootstrap-python: .venv was made with $(real_of .venv/bin/python); making it again with $want" >&2
    rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "bootstrap-python: creating .venv with $want" >&2
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.buildspec-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "bootstrap-python: installing buildspec[dev]" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
    touch "$stamp"
fi
