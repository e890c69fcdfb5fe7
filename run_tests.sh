#!/usr/bin/env bash
# Install the package (editable) and its pinned requirements into the current Python (a venv or
# conda env, if one is active) and run the test suite: the unit tier and the slow tier (every
# notebook once on the `smoke` profile, from a cache the tests own). Arguments go to pytest, e.g.
# `bash run_tests.sh -m "not slow"` for the unit tier alone.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
"$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
export MPLBACKEND=Agg
"$PY" -m pytest -q "$@"
