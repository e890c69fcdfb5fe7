import json

import pytest

from lib.measure.stats import Estimate
from lib.report.results import CLAIM_KEYS, ClaimError, check_claim, record_benchmark, record_claim, write_report


def _est(value=0.5, ci=(0.4, 0.6), n=100, seeds=1, kind="bootstrap"):
    return Estimate(value, ci, kind, n, seeds)


def _claim(results, estimate, threshold=0.0, direction=">", profile="smoke", id="c1"):
    return record_claim(results, id=id, paper="WARM", figure="Fig. 3", claim="a | b", metric="m",
                        estimate=estimate, threshold=threshold, direction=direction, notebook="01",
                        profile=profile)


def test_claims_are_upserted_per_profile_with_their_interval_and_verdict(tmp_path):
    _claim(tmp_path, _est())
    _claim(tmp_path, _est(-0.2, (-0.3, -0.1), n=40, seeds=3, kind="nested"))
    _claim(tmp_path, _est(), profile="other")
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert len(rows) == 2 and all(tuple(r) == CLAIM_KEYS for r in rows)
    smoke = next(r for r in rows if r["profile"] == "smoke")
    assert smoke["value"] == -0.2 and smoke["ci"] == [-0.3, -0.1] and smoke["ci_kind"] == "nested"
    assert smoke["verdict"] == "fails" and smoke["holds"] is False
    assert smoke["n"] == 40 and smoke["seeds"] == 3 and smoke["threshold"] == 0.0 and smoke["direction"] == ">"


@pytest.mark.parametrize("ci, direction, verdict", [((0.1, 0.2), ">", "holds"), ((-0.1, 0.2), ">", "inconclusive"),
                                                    ((0.1, 0.2), "<", "fails")])
def test_holds_is_the_verdict_holds(tmp_path, ci, direction, verdict):
    row = _claim(tmp_path, _est(0.15, ci), direction=direction)
    assert row["verdict"] == verdict and row["holds"] == (verdict == "holds")


@pytest.mark.parametrize("estimate, direction, field", [
    (_est(n=0), ">", "'n'"),  # an empty evaluation set
    (_est(0.5, (0.6, 0.4)), ">", "'ci'"),  # low > high
    (_est(), ">=", "'direction'"),
])
def test_bad_claims_are_one_clear_error_and_nothing_is_written(tmp_path, estimate, direction, field):
    _claim(tmp_path, _est(), id="kept")
    before = (tmp_path / "claims.json").read_text()
    with pytest.raises(ClaimError, match=f"claim 'c1': field {field}"):
        _claim(tmp_path, estimate, direction=direction)
    assert (tmp_path / "claims.json").read_text() == before


def test_a_record_missing_a_field_is_refused_when_results_are_written(tmp_path):
    row = _claim(tmp_path, _est())
    for field in ("ci", "verdict", "seeds"):
        bad = {k: v for k, v in row.items() if k != field}
        with pytest.raises(ClaimError, match=f"claim 'c1': missing field '{field}'"):
            check_claim(bad)
    rows = json.loads((tmp_path / "claims.json").read_text())
    del rows[0]["ci_kind"]
    (tmp_path / "claims.json").write_text(json.dumps(rows))
    with pytest.raises(ClaimError, match="claim 'c1': missing field 'ci_kind'"):
        write_report(tmp_path)


def test_benchmark_ratio_and_report(tmp_path):
    row = record_benchmark(tmp_path, name="t", ours=3.0, baseline=6.0, unit="s", profile="smoke",
                           device="cpu")
    assert row["ratio"] == 0.5
    _claim(tmp_path, _est(-0.1, (-0.2, 0.1)))
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_bytes(b"")
    report = write_report(tmp_path).read_text()
    assert "a \\| b" in report and "*inconclusive*" in report and "figures/f.png" in report
    assert "0 hold, 0 fail, 1 inconclusive of 1" in report
    assert "[-0.2, 0.1] (bootstrap, n=100)" in report


def test_every_claim_has_the_papers_result():
    from lib.config import ROOT
    from lib.report.paper import PAPER_RESULTS

    claims = json.loads((ROOT / "results" / "claims.json").read_text())
    ids = {c["id"] for c in claims}
    assert ids and ids <= set(PAPER_RESULTS), ids - set(PAPER_RESULTS)
    assert all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in PAPER_RESULTS.values())
    assert all(check_claim(c) for c in claims)  # the committed claims carry every field


def test_report_shows_the_papers_result_side_by_side(tmp_path):
    from lib.report.paper import PAPER_RESULTS

    for id in ("warm-wa-geq-ens-lmc", "not-a-claim"):
        record_claim(tmp_path, id=id, paper="WARM", figure="Fig. 3", claim=f"claim {id}", metric="m",
                     estimate=_est(), threshold=0.0, direction=">", notebook="01", profile="smoke")
    report = write_report(tmp_path).read_text()
    assert "| notebook | claim | paper | measured | 95% interval | verdict (threshold) |" in report
    rows = {r.split(" | ")[1]: r for r in report.splitlines() if r.startswith("| 01 |")}
    assert PAPER_RESULTS["warm-wa-geq-ens-lmc"] in rows["claim warm-wa-geq-ens-lmc"]
    assert "| WARM, Fig. 3: — | m: 0.5 |" in rows["claim not-a-claim"]
    assert "directions, not magnitudes" in report


def test_a_smoke_report_opens_with_the_caveat_and_a_default_one_does_not(tmp_path):
    from lib.report.results import SMOKE_CAVEAT

    for profile in ("smoke", "default"):
        _claim(tmp_path / profile, _est(), profile=profile)
        head = write_report(tmp_path / profile).read_text().splitlines()[:3]
        assert (SMOKE_CAVEAT in head) == (profile == "smoke")
    assert "verdicts mean nothing" in SMOKE_CAVEAT


def test_readme_block_follows_the_committed_results(tmp_path, monkeypatch):
    from lib import config
    from lib.report import results

    (tmp_path / "results").mkdir()
    (tmp_path / "README.md").write_text("intro\n<!-- claims:start -->\nstale row\n<!-- claims:end -->\n"
                                        "outro\n")
    monkeypatch.setattr(config, "ROOT", tmp_path)
    monkeypatch.setattr(results, "HEADLINE", ("warm-lmc",))
    _claim(tmp_path / "results", _est(), profile="default", id="warm-lmc")
    _claim(tmp_path / "results", _est(), profile="default", id="not-headline")
    _claim(tmp_path / "results", _est(0.1, (0.05, 0.15)), profile="smoke", id="c2")
    record_benchmark(tmp_path / "results", name="notebook 00 wall time", ours=100.0,
                     baseline=200.0, unit="s", profile="default", device="cpu")
    results.write_report(tmp_path / "results")
    readme = (tmp_path / "README.md").read_text()
    assert "stale row" not in readme and readme.startswith("intro\n") and readme.endswith("outro\n")
    assert "| `warm-lmc`: a \\| b | WARM, Fig. 3 | m: 0.5 | [0.4, 0.6] (bootstrap, n=100) | holds (> 0) |" in readme
    assert "**2 hold, 0 fail, 0 inconclusive of 2**" in readme  # the tally counts every default claim
    assert "not-headline" not in readme and "c2" not in readme  # only headline claims, only default
    assert "wall time" not in readme  # benchmarks live in REPORT.md only
    report = (tmp_path / "results" / "REPORT.md").read_text()
    assert "| notebook 00 wall time | 100 | 200 | 0.5 | s | cpu | default |" in report


def test_readme_headline_claims_exist_and_fit():
    from lib.report.paper import PAPER_RESULTS
    from lib.report.results import HEADLINE

    assert len(HEADLINE) <= 10 and len(set(HEADLINE)) == len(HEADLINE)
    assert set(HEADLINE) <= set(PAPER_RESULTS)


def _record_many(results, worker):
    for k in range(10):
        _claim(results, _est(), id=f"w{worker}-{k}")
        record_benchmark(results, name=f"w{worker}-{k}", ours=1.0, baseline=None, unit="s", profile="smoke")


def test_notebooks_recording_at_once_lose_no_record(tmp_path):
    """Two notebooks may run at once: their read-modify-writes of one results folder are locked."""
    import multiprocessing

    procs = [multiprocessing.get_context("fork").Process(target=_record_many, args=(tmp_path, w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    want = {f"w{w}-{k}" for w in range(4) for k in range(10)}
    assert {c["id"] for c in json.loads((tmp_path / "claims.json").read_text())} == want
    assert {b["name"] for b in json.loads((tmp_path / "benchmarks.json").read_text())} == want
