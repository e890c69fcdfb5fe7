# The Python environment of this checkout, sourced by run_all.sh and run_tests.sh so that both use
# the same one: $PYTHON if set; else the active conda env or virtualenv; else a local .venv, created
# here if missing. The package (editable) and its pinned requirements are installed into it when
# requirements.txt or pyproject.toml changed since the last install. Sets PY.
pick_env() {
  if [[ -n "${PYTHON:-}" ]]; then
    PY=$PYTHON
    echo "[env] using \$PYTHON: $PY"
  elif [[ -n "${CONDA_PREFIX:-}" && "${CONDA_DEFAULT_ENV:-base}" != "base" ]] || [[ -n "${VIRTUAL_ENV:-}" ]]; then
    PY=python
    echo "[env] using the active environment: $(command -v python)"
  else
    if [[ ! -x .venv/bin/python ]]; then
      echo "[env] creating .venv"
      python3 -m venv .venv
    fi
    PY=.venv/bin/python
  fi
  local stamp want
  stamp=$("$PY" -c 'import sys; print(sys.prefix)')/.requirements.sha256
  want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "[env] installing the package and its pinned requirements (first run: 1–2 minutes)"
    "$PY" -m pip install --quiet --disable-pip-version-check -r requirements.txt -e .
    echo "$want" > "$stamp" 2>/dev/null || true
  else
    echo "[env] requirements already installed in $("$PY" -c 'import sys; print(sys.prefix)')"
  fi
}
