#!/usr/bin/env bash
# Regenerate every figure: execute the numbered notebooks in order with papermill.
#
# usage: ./run_all.sh [--profile smoke|default|gpu] [--only NN [NN ...]] [--set KEY=VALUE]... [--fresh]
#
#   --profile  smoke: a plumbing check in minutes (results in results/smoke/); default: the science,
#              the committed results/ (about an hour on 2 cores from an empty cache); gpu: real TL;DR
#   --only     notebook numbers to run, e.g. --only 00 02
#   --set      a config override, repeatable, e.g. --set rm.epochs=3 --set 'rm.lrs=[1e-4,3e-4]'
#   --fresh    delete the profile's artifact cache first
#
# Environment: the active conda env or virtualenv if there is one, else a local .venv created here
# (pip install -e ., reinstalled only when requirements.txt changes). Stops at the first failing
# notebook, naming it and the failing cell, and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"

if [[ " $* " == *" -h "* || " $* " == *" --help "* ]]; then
  sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
# The arguments are checked before anything is installed or run (the standard library suffices).
python3 -c "import sys; from lib.runner import check_args; check_args(sys.argv[1:])" "$@"

if [[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]] || [[ -n "${VIRTUAL_ENV:-}" ]]; then
  PY=python
  echo "[env] using the active environment: $(command -v python)"
else
  if [[ ! -x .venv/bin/python ]]; then
    echo "[env] creating .venv"
    python3 -m venv .venv
  fi
  PY=.venv/bin/python
  stamp=.venv/.requirements.sha256
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "[env] installing the package and its pinned requirements into .venv (first run: a few minutes)"
    "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
    echo "$want" > "$stamp"
  else
    echo "[env] reusing .venv"
  fi
fi

export MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec "$PY" -m lib.runner "$@"
