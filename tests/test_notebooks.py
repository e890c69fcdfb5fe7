"""Every notebook: committed without outputs, has a `parameters` cell, and runs on `smoke`."""

import json

import nbformat
import pytest

from lib import runner

NOTEBOOKS = sorted(runner.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_source_has_no_outputs_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
    """Every notebook on `smoke`, twice, each run from an empty cache: the results directories."""
    import os

    saved = {k: os.environ.get(k) for k in ("REPRO_CACHE_DIR", "REPRO_RESULTS_DIR")}
    runs = []
    try:
        for run in ("a", "b"):
            root = tmp_path_factory.mktemp(f"smoke-{run}")
            os.environ["REPRO_CACHE_DIR"] = str(root / "cache")
            os.environ["REPRO_RESULTS_DIR"] = str(root / "results")
            runs.append((runner.main(["--profile", "smoke"]), root / "results"))
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return runs


def test_all_notebooks_execute_on_smoke(smoke_runs):
    status, results = smoke_runs[0]
    assert status == 0
    executed = sorted(p.name for p in (results / "executed").glob("*.ipynb"))
    assert executed == [p.name for p in NOTEBOOKS]
    claims = json.loads((results / "claims.json").read_text())
    assert claims and all(c["profile"] == "smoke" for c in claims)
    assert {c["notebook"] for c in claims} == {p.name[:2] for p in NOTEBOOKS}
    assert all(set(c) == set(runner_claim_keys()) and isinstance(c["holds"], bool) for c in claims)
    figures = list((results / "figures").glob("*.png"))
    assert figures and all((f.with_suffix(".pdf")).exists() for f in figures)
    assert (results / "REPORT.md").read_text().count("| smoke |") >= 1


def test_two_smoke_runs_with_one_seed_give_identical_claims(smoke_runs):
    """Every claim's value and verdict from two runs, each from an empty cache, match exactly
    (claims timed in seconds aside)."""
    from lib.results import TIMED_CLAIMS

    assert [status for status, _ in smoke_runs] == [0, 0]
    claims = [{c["id"]: c for c in json.loads((results / "claims.json").read_text())
               if c["id"] not in TIMED_CLAIMS} for _, results in smoke_runs]
    assert claims[0] and claims[0] == claims[1]


def runner_claim_keys():
    from lib.results import CLAIM_KEYS
    return CLAIM_KEYS


def test_a_failing_notebook_is_named_with_its_cell(tmp_env, monkeypatch, capsys):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell('profile = "smoke"', metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("raise RuntimeError('boom')"),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_env / "nbs"
    folder.mkdir()
    nbformat.write(nb, folder / "00_fails.ipynb")
    nbformat.write(nb, folder / "01_never_runs.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", folder)
    assert runner.main(["--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 00_fails.ipynb, cell" in err and "RuntimeError: boom" in err
    assert not (tmp_env / "results" / "executed" / "01_never_runs.ipynb").exists()


def test_unknown_profile_is_one_clear_error(capsys):
    assert runner.main(["--profile", "laptop"]) == 2
    assert "valid profiles: smoke, default, gpu" in capsys.readouterr().err
