#!/usr/bin/env bash
# Install the package (editable) and its pinned requirements into the environment run_all.sh uses
# (lib/env.sh: $PYTHON if set, else the active conda env or virtualenv, else the local .venv,
# created if missing) and run the test suite: the unit tier and the slow tier (every notebook once
# on the `smoke` profile, from a cache the tests own). Arguments go to pytest, e.g.
# `bash run_tests.sh -m "not slow"` for the unit tier alone.
set -euo pipefail
cd "$(dirname "$0")"
source lib/env.sh
pick_env
export MPLBACKEND=Agg
"$PY" -m pytest -q "$@"
