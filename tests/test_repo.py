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


def test_requirements_are_pinned_and_agree_with_environment_yml_and_pyproject():
    import tomllib

    req_lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
    req = _pins(req_lines)
    assert len(req) == len(req_lines), "every requirement is pinned with =="
    env = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert req == env
    assert "- -e ." in (ROOT / "environment.yml").read_text()  # conda installs the package too
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert _pins(project["dependencies"]) == req
    assert NINE <= set(req)


def test_every_notebook_has_its_jupytext_twin_and_they_agree():
    """The percent-format `.py` is what people edit; the `.ipynb` (no outputs) must say the same."""
    import jupytext

    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert notebooks
    for nb in notebooks:
        twin = nb.with_suffix(".py")
        assert twin.exists(), f"{nb.name} has no percent-format twin {twin.name}"
        a, b = jupytext.read(nb), jupytext.read(twin)
        assert [(c.cell_type, c.source) for c in a.cells] == [(c.cell_type, c.source) for c in b.cells], \
            f"{nb.name} and {twin.name} differ: run `jupytext --sync notebooks/{twin.name}`"
        code = [c.source for c in b.cells if c.cell_type == "code"]
        assert max(len(c.splitlines()) for c in code) <= 30, f"a code cell of {twin.name} is over 30 lines"
        assert not any("sys.path" in c for c in code), f"{twin.name} manipulates sys.path"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash run_tests.sh" in readme and "bash run_tests.sh" in ci
    assert "./run_all.sh" in readme


def test_no_pickled_weights_or_remote_code():
    for path in [*(ROOT / "lib").glob("**/*.py"), *(ROOT / "benchmarks").glob("*.py")]:
        text = path.read_text()
        assert "trust_remote_code=True" not in text
        assert "torch.load(" not in text and "pickle" not in text, path.name


def test_readme_is_short_and_its_links_resolve():
    """A newcomer reads the README in five minutes; the design records in docs/ hold the rest."""
    readme = ROOT / "README.md"
    assert len(readme.read_text().splitlines()) <= 250, "README.md is over 250 lines: move detail to docs/"
    for page in [readme, *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in target:
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"
