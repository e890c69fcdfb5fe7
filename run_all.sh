#!/usr/bin/env bash
# Regenerate every figure: execute the numbered notebooks in order with papermill.
#
#   ./run_all.sh [--profile smoke|default|gpu] [--only NN ...] [--fresh]
#
# Environment: the active conda env or virtualenv if there is one, else a local .venv created
# here with pip (requirements.txt; reinstalled only when that file changes).
# Stops at the first failing notebook, naming it and the failing cell, and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"

profile=default
only=()
fresh=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --profile) profile="${2:?--profile needs a value: smoke, default or gpu}"; shift 2 ;;
    --profile=*) profile="${1#*=}"; shift ;;
    --only) shift; while [[ $# -gt 0 && "$1" != --* ]]; do only+=("$1"); shift; done ;;
    --fresh) fresh=(--fresh); shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done

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
  want=$(sha256sum requirements.txt | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "[env] installing requirements.txt into .venv (first run: a few minutes)"
    "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
  else
    echo "[env] reusing .venv"
  fi
fi

export MPLBACKEND=Agg PYTHONUNBUFFERED=1
args=(--profile "$profile" "${fresh[@]}")
[[ ${#only[@]} -gt 0 ]] && args+=(--only "${only[@]}")
exec "$PY" -m lib.runner "${args[@]}"
