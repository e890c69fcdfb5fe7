"""Every notebook: committed without outputs, has a `parameters` cell, and runs on `smoke`."""

import contextlib
import json
import os
import re
import sys

import nbformat
import pytest

from lib import runner
from lib.profiles import get_profile
from lib.report.results import CLAIM_KEYS

NOTEBOOKS = sorted(runner.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
TIMINGS = {"build_seconds", "seconds", "samples_per_s", "tokens_per_s"}  # wall clock, not results


def test_there_are_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name.startswith("00_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_source_has_no_outputs_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip outputs"
    tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and "profile" in tagged[0].source


@contextlib.contextmanager
def _terminal(path):
    """Everything the run prints, its worker processes and kernels included, into `path`: what a
    user would see in the terminal."""
    with open(path, "w") as log:
        sys.stdout.flush(), sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(log.fileno(), 1), os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1), os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Every notebook on `smoke`, once, from an empty cache the test owns, with the independent
    runs built first by two local processes through submitit (`run_all.sh --jobs 2`)."""
    root = tmp_path_factory.mktemp("smoke")
    saved = {k: os.environ.get(k) for k in ("REPRO_CACHE_DIR", "REPRO_RESULTS_DIR")}
    os.environ["REPRO_CACHE_DIR"] = str(root / "cache")
    os.environ["REPRO_RESULTS_DIR"] = str(root / "results")
    try:
        with _terminal(root / "terminal.log"):
            status = runner.main(["--profile", "smoke", "--jobs", "2"])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return status, root


@pytest.mark.slow
def test_all_notebooks_execute_on_smoke(smoke_run):
    status, root = smoke_run
    results = root / "results"
    assert status == 0
    executed = sorted(p.name for p in (results / "executed").glob("*.ipynb"))
    assert executed == [p.name for p in NOTEBOOKS]
    claims = json.loads((results / "claims.json").read_text())
    assert claims and all(c["profile"] == "smoke" for c in claims)
    assert {c["notebook"] for c in claims} == {p.name[:2] for p in NOTEBOOKS}
    assert {"premise-pretraining-matters", "premise-ens-beats-members"} <= {c["id"] for c in claims}
    assert all(tuple(c) == CLAIM_KEYS and c["holds"] == (c["verdict"] == "holds") for c in claims)
    figures = list((results / "figures").glob("*.png"))
    assert figures and all((f.with_suffix(".pdf")).exists() for f in figures)
    report = (results / "REPORT.md").read_text()
    assert "inconclusive of" in report and "verdicts mean nothing" in "".join(report.splitlines()[:3])
    bench = json.loads((results / "benchmarks.json").read_text())
    waves = {b["name"].split()[2].rstrip(","): b["ours"] for b in bench if b["name"].startswith("fan-out wave ")}
    assert set(waves) == {"prepare", "rms", "rl", "warp2"} and all(s > 0 for s in waves.values())


@pytest.mark.slow
def test_the_smoke_cache_keys_are_the_recorded_ones(smoke_run):
    """Every stage key of the smoke run is the one `tests/smoke_fingerprint.py --record` wrote:
    a change meant to move no number (a re-layout, a rename) moves no key. Keys hash the config
    and the versions only, so every machine computes the same ones."""
    from smoke_fingerprint import FIXTURE, fingerprint

    _, root = smoke_run
    recorded = json.loads(FIXTURE.read_text())
    found = fingerprint(root / "cache" / "smoke", root / "results")
    assert [k for k in found["keys"] if k not in recorded["keys"]] == []
    assert [k for k in recorded["keys"] if k not in found["keys"]] == []


@pytest.mark.slow
def test_the_smoke_claims_and_figures_are_the_recorded_ones(smoke_run):
    """Every untimed smoke claim, its value, interval and verdict, and every untimed figure's
    bytes are the recorded ones, on a machine whose float arithmetic is the recorder's."""
    from smoke_fingerprint import FIXTURE, fingerprint

    _, root = smoke_run
    recorded = json.loads(FIXTURE.read_text())
    found = fingerprint(root / "cache" / "smoke", root / "results")
    if found["arithmetic"] != recorded["arithmetic"]:
        pytest.skip("this machine's float arithmetic differs from the recorder's: keys compared alone")
    assert set(found["claims"]) == set(recorded["claims"])
    assert [i for i, c in found["claims"].items() if c != recorded["claims"][i]] == []
    assert set(found["figures"]) == set(recorded["figures"])
    assert [f for f, h in found["figures"].items() if h != recorded["figures"][f]] == []


@pytest.mark.slow
def test_a_successful_run_prints_no_noise(smoke_run):
    """What a successful run prints is read by people: no kernel tracebacks or interrupts, no
    'None' standing for a number, no signed zero, no replacement characters."""
    import re

    status, root = smoke_run
    out = (root / "terminal.log").read_text()
    assert status == 0 and "[run] report:" in out
    for noise in ("KeyboardInterrupt", "Traceback", "None prompts", "\ufffd"):
        assert noise not in out, f"a successful run printed {noise!r}"
    assert not re.search(r"(?<![\w.])-0(\.0+)?(?![\d.e])", out), "a zero printed with a sign"


@pytest.mark.slow
def test_one_seed_gives_the_same_runs_whatever_the_fan_out(smoke_run, tmp_path, monkeypatch):
    """Determinism and `--jobs` invariance where they are cheapest: every stage built again in one
    process into an empty cache is byte-identical to the stage the notebooks' run built with two
    processes; notebook 03, run again on that cache, records identical claims (timed claims aside)
    and byte-identical figures."""
    from lib import fanout
    from lib.report.results import TIMED_CLAIMS

    _, root = smoke_run
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    for wave in ("prepare", *fanout.JOBS):  # prepare as the run's (2 jobs × 1 thread), in one process
        fanout.build_shard("smoke", {}, wave, threads=2 if wave == "prepare" else 1)
    def untimed(meta):
        """Metadata without its wall-clock measurements (build time, sampling throughput)."""
        if isinstance(meta, dict):
            return {k: untimed(v) for k, v in meta.items() if k not in TIMINGS}
        return [untimed(v) for v in meta] if isinstance(meta, list) else meta

    def stages(cache):
        """Each artifact's file checksums and its metadata, timings aside."""
        out = {}
        for p in cache.iterdir():
            if (p / "manifest.json").exists():
                files = json.loads((p / "manifest.json").read_text())
                meta = untimed(json.loads((p / "meta.json").read_text()))
                out[p.name] = ({f: m for f, m in files.items() if f != "meta.json"}, meta)
        return out

    again = stages(tmp_path / "cache" / "smoke")
    first = {k: v for k, v in stages(root / "cache" / "smoke").items() if k in again}
    assert again and set(first) == set(again) and any(k.startswith("rl-") for k in again)
    assert [k for k in again if first[k] != again[k]] == []
    assert runner.main(["--profile", "smoke", "--only", "03", "--jobs", "1"]) == 0
    claims = [{c["id"]: c for c in json.loads((path / "claims.json").read_text())
               if c["notebook"] == "03" and c["id"] not in TIMED_CLAIMS}
              for path in (root / "results", tmp_path / "results")]
    assert claims[0] and claims[0] == claims[1]
    figures = sorted(p.name for p in (tmp_path / "results" / "figures").iterdir())
    assert figures and [f for f in figures if (root / "results" / "figures" / f).read_bytes()
                        != (tmp_path / "results" / "figures" / f).read_bytes()] == []  # byte-stable


@pytest.mark.slow
def test_a_repaired_artifact_and_a_resume_are_said_in_the_terminal(smoke_run, tmp_path, monkeypatch, capfd):
    """A corrupted RM that a fan-out job finds is rebuilt, and the terminal says so (not only the
    job's log); a run on a cache that holds stages says it resumes."""
    import re
    import shutil

    _, root = smoke_run
    shutil.copytree(root / "cache", tmp_path / "cache")
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_RESULTS_DIR", str(tmp_path / "results"))
    rms = (tmp_path / "cache" / "smoke").glob("rm-*")
    rm = sorted(p for p in rms if not p.name.startswith(("rm-probe", "rm-scores")))[0]
    victim = next(p for p in sorted(rm.rglob("*.safetensors")))
    victim.write_bytes(victim.read_bytes()[:-8] + bytes(8))
    capfd.readouterr()
    assert runner.main(["--profile", "smoke", "--only", "01", "--jobs", "2"]) == 0
    out = capfd.readouterr().out
    assert f"[cache] rebuilding {rm.name}: corrupted, checksum mismatch in {victim.relative_to(rm)}" in out
    assert "[run] resuming: " in out and " stages cached" in out
    assert re.search(r"\[fanout\] wave rms: \d+ runs in 2 job\(s\), 1 stage built\n", out)  # the damaged RM


@pytest.mark.slow
def test_the_premise_probe_writes_every_field_on_smoke(smoke_run, tmp_path, monkeypatch):
    """`python -m benchmarks.substrate_probe --premises` on the smoke run's cache: one JSON row with
    every field, the premise numbers each with its interval, and the stage times."""
    import shutil

    from benchmarks import substrate_probe

    _, root = smoke_run
    shutil.copytree(root / "cache", tmp_path / "cache")
    for pairs in (tmp_path / "cache").glob("*/comparisons-*"):
        shutil.rmtree(pairs)  # the probe builds the pairs again: its prepare time is a measurement
    monkeypatch.setenv("REPRO_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "row.json"
    substrate_probe.main(["--premises", "--profile", "smoke", "--jobs", "1", "--json", str(out)])
    (line,) = out.read_text().splitlines()
    row = json.loads(line)
    assert tuple(row) == substrate_probe.PREMISE_FIELDS and row["profile"] == "smoke"
    m = get_profile("smoke").rm.m
    for split in ("ID val", "OOD"):
        for k in ("label", "expected"):
            for name in ("SFT init − random init (member 0)", "probe SFT − probe random",
                         f"ENS M={m} − best member", f"WA M={m} − ENS M={m}"):
                low_value_high = row["premises"][f"{split}, {k}: {name}"]
                assert len(low_value_high) == 3 and low_value_high[1] <= low_value_high[0] <= low_value_high[2]
    assert set(row["lmc"]) >= {"λ", "WA", "ENS", "diag", "WA − ENS at λ=0.5", "WA − diag, mean over interior λ"}
    assert {f"RM {i}" for i in range(m)} <= set(row["single RM"]) and "BoW proxy" in row["single RM"]
    assert {"prepare", "control", "total", *(f"RM {i}" for i in range(m))} <= set(row["seconds"])
    assert row["prepare"]["cached"] is False and row["prepare"]["key"].startswith("comparisons-")
    assert row["machine speed"] > 0
    assert 0.5 <= row["ceiling"]["OOD"] <= 1 and "residual correlation (SFT samples)" in row["diagnostics"]
    # recorded: a row of the rows file, and a line of the generated table under its label
    doc = tmp_path / "substrate.md"
    doc.write_text("intro\n<!-- rows:start -->\nstale\n<!-- rows:end -->\noutro\n")
    substrate_probe.record(row, "smoke check", rows=tmp_path / "rows.jsonl", doc=doc)
    recorded = json.loads((tmp_path / "rows.jsonl").read_text())
    assert recorded["label"] == "smoke check" and recorded["commit"] and recorded["premises"] == row["premises"]
    table = doc.read_text()
    assert "stale" not in table and table.startswith("intro\n") and table.endswith("outro\n")
    (line,) = [t for t in table.splitlines() if t.startswith("| smoke check |")]
    assert line.count("✓") + line.count("✗") == 9 and "| `smoke` |" in line


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
    assert runner.main(["--profile", "smoke", "--jobs", "1"]) == 1
    err = capsys.readouterr().err
    assert "FAILED: 00_fails.ipynb, cell" in err and "RuntimeError: boom" in err
    assert not (tmp_env / "results" / "executed" / "01_never_runs.ipynb").exists()


@pytest.mark.slow
def test_notebooks_run_two_at_a_time_with_the_runs_thread_count_and_in_their_order(tmp_env, monkeypatch):
    """`--jobs 2`: two kernels at once, each computing with `RUN_THREADS` torch threads whatever
    runs beside it; a notebook named in `AFTER` waits for the one it reads (here 03 for 00, which
    runs longest, so 03 would otherwise start as soon as 01 and 02 were done)."""
    from lib.config import RUN_THREADS

    log = tmp_env / "log.jsonl"
    folder = tmp_env / "nbs"
    folder.mkdir()
    for name, sleep in (("00_long", 6), ("01_short", 0), ("02_short", 0), ("03_reads_00", 0)):
        nb = nbformat.v4.new_notebook(cells=[
            nbformat.v4.new_code_cell('profile = "smoke"\noverrides = "{}"', metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell(
                "import json, time, torch\n"
                f"start = time.time(); time.sleep({sleep})\n"
                f"with open({str(log)!r}, 'a') as f:\n"
                f"    f.write(json.dumps({{'nb': {name[:2]!r}, 'start': start, 'end': time.time(), "
                "'threads': torch.get_num_threads()}) + '\\n')"),
        ])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"{name}.ipynb")
    monkeypatch.setattr(runner, "NOTEBOOKS", folder)
    monkeypatch.setattr(runner, "AFTER", {"03": "00"})
    done = []
    failed = runner.run_notebooks(runner.notebooks(), "smoke", tmp_env / "out", {}, jobs=2,
                                  on_done=lambda nb, seconds, built: done.append(nb.name[:2]))
    assert failed is None and sorted(done) == ["00", "01", "02", "03"]
    runs = {r["nb"]: r for r in map(json.loads, log.read_text().splitlines())}
    assert {r["threads"] for r in runs.values()} == {RUN_THREADS}
    assert runs["01"]["start"] < runs["00"]["end"]  # two at once
    assert runs["03"]["start"] >= runs["00"]["end"] > runs["02"]["end"]  # 03 waited for 00 alone
    assert all((tmp_env / "out" / p.name).exists() for p in runner.notebooks())


def test_unknown_profile_is_one_clear_error(capsys):
    with pytest.raises(SystemExit) as err:
        runner.main(["--profile", "laptop"])
    assert err.value.code == 2
    assert "invalid choice: 'laptop'" in capsys.readouterr().err


def test_an_environment_that_does_not_import_this_repository_is_one_clear_error(tmp_path, monkeypatch):
    import re
    import sys

    runner.check_install()  # the tests run where this repository is installed
    with pytest.raises(SystemExit, match=r"imports `lib` not at all.* -m pip install -e "):
        runner.check_install((sys.executable, "-S"))  # no site-packages: no install
    other = tmp_path / "elsewhere"
    (other / "lib").mkdir(parents=True)
    (other / "lib" / "__init__.py").write_text("")
    monkeypatch.setenv("PYTHONPATH", str(other))  # another checkout, found first
    message = f"imports `lib` from {other / 'lib'}, not from {runner.ROOT / 'lib'}"
    with pytest.raises(SystemExit, match=re.escape(message)):
        runner.check_install()


@pytest.mark.parametrize("argv, message", [
    (["--only"], "argument --only: expected at least one argument"),
    (["--set", "pretrain.steps=abc"], "config key 'pretrain.steps' expects int, got 'abc' (str)"),
    (["--set", "nosuch"], "--set takes key=value"),
    (["--jobs", "0"], "--jobs must be ≥ 1"),
    (["--only", "00", "99"], "--only: no notebook numbered 99; the notebooks are 00, 01"),
    (["--preset", "nosuch"], "unknown preset 'nosuch'; valid presets: no-replies"),
    (["--set", "preset=nosuch"], "unknown preset 'nosuch'; valid presets: no-replies"),
])
def test_bad_arguments_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as err:
        runner.check_args(argv)
    assert err.value.code == 2 and message in capsys.readouterr().err


def test_the_arithmetic_checksum_repeats_and_sees_a_changed_weight(monkeypatch):
    """The checksum that decides whether claims are compared: the same twice on one machine, and
    another one when every weight of the pass is off by one part in a million."""
    import torch
    from smoke_fingerprint import arithmetic

    first = arithmetic()
    assert first == arithmetic() and len(first) == 64
    linear = torch.nn.functional.linear
    monkeypatch.setattr(torch.nn.functional, "linear", lambda x, w, b=None: linear(x, w * (1 + 1e-6), b))
    assert arithmetic() != first


DECIMAL = re.compile(r"(?<![\w.§])[+−-]?\d+\.\d+(?![\w.])")


def typed_results(markdown: str, claims: list[dict]) -> list[str]:
    """The decimals of `markdown`'s prose (code spans left out) with at least two significant
    digits that a claim record holds, as its value or an interval's end, or that ×100 (a
    percentage), at the precision typed."""
    held = [abs(float(v)) * scale for c in claims for v in (c["value"], *c["ci"]) if v is not None
            for scale in (1, 100)]
    found = []
    for typed in DECIMAL.findall(re.sub(r"`[^`]*`", "", markdown)):  # not config values in code spans
        digits = typed.lstrip("+−-")
        if len(digits.replace(".", "").lstrip("0")) < 2:
            continue
        half = 0.5 * 10 ** -len(digits.split(".")[1])
        if any(abs(float(digits) - v) <= half + 1e-12 for v in held):
            found.append(typed)
    return found


def test_a_typed_in_result_is_found_at_the_precision_typed():
    claims = [{"value": 0.41234, "ci": [0.377, 0.4424]}, {"value": -0.0301, "ci": [None, None]}]
    prose = ("wins 41.2% of its samples, [0.38, 0.44]; −0.030 gold; step 1.5; §5.2; v1.10.3; 0.4 or 0.03 "
             "alone; `rm.lr=0.41`")
    assert typed_results(prose, claims) == ["41.2", "0.38", "0.44", "−0.030"]  # one significant digit: not a result
    assert typed_results("wins 41.3% of its samples", claims) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_prose_types_in_no_number_a_result_file_holds(path):
    """A sentence that needs a result prints it from the claim record (a printed line or a
    formatted markdown output), so prose never goes stale after a regeneration."""
    from lib.config import ROOT

    claims = json.loads((ROOT / "results" / "claims.json").read_text())
    typed = {i: hits for i, cell in enumerate(nbformat.read(path, as_version=4).cells)
             if cell.cell_type == "markdown" and (hits := typed_results(cell.source, claims))}
    assert not typed, f"markdown cells (index: numbers) that type in a result: {typed}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_is_a_chapter_in_fastbooks_shape(path):
    """A sentence of why, a short cell, its output, a sentence of what it shows: the median code
    cell is at most 8 lines, a sentence stands between any two code cells, and a cell that records
    a claim only records it (`tests/chapter_rules.py`)."""
    from chapter_rules import departures

    assert departures(path) == []


def test_the_chapter_rules_see_each_departure(tmp_path):
    from chapter_rules import departures

    def cell(kind, source):
        return {"cell_type": kind, "source": source, "metadata": {}, **({"outputs": []} if kind == "code" else {})}

    nb = tmp_path / "99_x.ipynb"
    nb.write_text(json.dumps({"cells": [
        cell("code", "x = 1"), cell("code", "y = 2"),
        cell("markdown", "why"), cell("code", "e = f(x)\nch.claim(id='a', estimate=bootstrap(e))"),
        cell("markdown", "why"), cell("code", "if ok:\n    ch.claim(id='b', estimate=e)\n    print(row)")]}))
    assert departures(nb) == ["code cell 1 right after code cell 0",
                              "cell 3: a claim's estimate is computed in its own call",
                              "cell 3: computes beside a claim: e = f(x)"]
