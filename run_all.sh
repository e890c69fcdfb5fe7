#!/usr/bin/env bash
# Regenerate every figure: execute the numbered notebooks in order with papermill.
#
# usage: ./run_all.sh [--profile smoke|default|gpu] [--only NN [NN ...]] [--preset NAME] [--set KEY=VALUE]...
#                     [--fresh]
#
#   --profile  smoke: a plumbing check in minutes (results in results/smoke/); default: the science,
#              the committed results/ (about 90 minutes on 2 cores from an empty cache); gpu: real TL;DR
#   --only     notebook numbers to run, e.g. --only 00 02
#   --preset   a named set of overrides (lib/profiles.py, PRESETS), e.g. --preset no-replies: the
#              world before the substrate search, where WARM's premises fail (docs/substrate.md)
#   --set      a config override, repeatable, e.g. --set rm.epochs=3 --set 'rm.lrs=[1e-4,3e-4]'
#   --fresh    delete the profile's artifact cache first
#
# Environment (lib/env.sh, shared with run_tests.sh): $PYTHON if set, else the active conda env or
# virtualenv, else a local .venv created here (pip install -e ., again only when requirements.txt
# or pyproject.toml changes). Stops at the first failing notebook, naming it and the failing cell,
# and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")"

if [[ " $* " == *" -h "* || " $* " == *" --help "* ]]; then
  sed -n '4,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
# The arguments are checked before anything is installed or run (the standard library suffices).
python3 -c "import sys; from lib.runner import check_args; check_args(sys.argv[1:])" "$@"

source lib/env.sh
pick_env

export MPLBACKEND=Agg PYTHONUNBUFFERED=1
exec "$PY" -m lib.runner "$@"
