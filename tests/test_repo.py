"""The repository's promises: pinned and agreeing environments, the README's two commands."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NINE = {"torch", "transformers", "datasets", "peft", "jupyterlab", "papermill", "matplotlib",
        "pandas", "bitsandbytes"}


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_requirements_are_pinned_and_agree_with_environment_yml():
    req_lines = [l for l in (ROOT / "requirements.txt").read_text().splitlines()
                 if l.strip() and not l.startswith("#")]
    req = _pins(req_lines)
    assert len(req) == len(req_lines), "every requirement is pinned with =="
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req == env
    assert NINE <= set(req)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash run_tests.sh" in readme and "bash run_tests.sh" in ci
    assert "./run_all.sh" in readme


def test_no_pickled_weights_or_remote_code():
    for path in (ROOT / "lib").glob("*.py"):
        text = path.read_text()
        assert "trust_remote_code=True" not in text
        assert "torch.load(" not in text and "pickle" not in text, path.name
