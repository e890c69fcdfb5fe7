#!/usr/bin/env bash
# Install the pinned requirements into the current Python (a venv or conda env, if one is active)
# and run the test suite: unit tests and every notebook on the `smoke` profile.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
export MPLBACKEND=Agg
"$PY" -m pytest -q "$@"
