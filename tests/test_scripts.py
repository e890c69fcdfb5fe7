"""The two shell entry points: `run_all.sh` checks its arguments before it installs anything, and
`run_tests.sh` runs the tests in the environment `run_all.sh` uses (lib/env.sh)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _checkout(tmp_path: Path) -> Path:
    """A copy of what the scripts read, with no environment in it."""
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "lib", repo / "lib", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "notebooks", repo / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("run_all.sh", "run_tests.sh", "requirements.txt", "pyproject.toml"):
        shutil.copy(ROOT / name, repo / name)
    return repo


def _env(**extra) -> dict:
    active = ("VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "PYTHON")
    return {**{k: v for k, v in os.environ.items() if k not in active}, **extra}


def test_a_bad_only_value_is_one_line_and_exit_2_before_any_install(tmp_path):
    repo = _checkout(tmp_path)
    start = time.monotonic()
    out = subprocess.run(["bash", "run_all.sh", "--only", "99"], cwd=repo, env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 2
    assert out.stdout == "" and out.stderr.strip().count("\n") == 0
    assert "no notebook numbered 99" in out.stderr and "[" not in out.stderr  # no list repr
    assert not (repo / ".venv").exists()  # nothing was installed
    assert time.monotonic() - start < 10


def _fake_python(bindir: Path, log: Path) -> Path:
    """A `python` that logs each call and stands in for pip and pytest."""
    bindir.mkdir(parents=True, exist_ok=True)
    fake = bindir / "python"
    fake.write_text(f'#!/usr/bin/env bash\nif [[ "$1" == "-c" ]]; then echo "{bindir.parent}"; exit 0; fi\n'
                    f'echo "$0 $*" >> "{log}"\n')
    fake.chmod(0o755)
    return fake


def test_run_tests_uses_the_local_venv(tmp_path):
    repo = _checkout(tmp_path)
    log = tmp_path / "calls"
    fake = _fake_python(repo / ".venv" / "bin", log)
    out = subprocess.run(["bash", "run_tests.sh", "-k", "nothing"], cwd=repo, env=_env(), capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    calls = log.read_text().splitlines()
    assert [c.split()[:3] for c in calls] == [[".venv/bin/python", "-m", "pip"], [".venv/bin/python", "-m", "pytest"]]
    assert calls[1].endswith("-k nothing") and fake.exists()
    log.unlink()  # a second run finds the requirements installed and only tests
    subprocess.run(["bash", "run_tests.sh"], cwd=repo, env=_env(), check=True, capture_output=True, timeout=60)
    assert [c.split()[:3] for c in log.read_text().splitlines()] == [[".venv/bin/python", "-m", "pytest"]]


def test_run_tests_uses_the_active_virtualenv(tmp_path):
    repo = _checkout(tmp_path)
    log = tmp_path / "calls"
    active = tmp_path / "active"
    _fake_python(active / "bin", log)
    env = _env(VIRTUAL_ENV=str(active), PATH=f"{active / 'bin'}:{os.environ['PATH']}")
    subprocess.run(["bash", "run_tests.sh"], cwd=repo, env=env, check=True, capture_output=True, timeout=60)
    calls = log.read_text().splitlines()
    assert calls and all(c.startswith(str(active / "bin" / "python")) for c in calls)
    assert not (repo / ".venv").exists()
