import json

from lib.results import CLAIM_KEYS, record_benchmark, record_claim, write_report


def _claim(results, value, holds, profile="smoke"):
    return record_claim(results, id="c1", paper="WARM", figure="Fig. 3", claim="a | b",
                        metric="m", value=value, holds=holds, notebook="01", profile=profile)


def test_claims_are_upserted_per_profile(tmp_path):
    _claim(tmp_path, 0.5, True)
    _claim(tmp_path, 0.25, False)
    _claim(tmp_path, 0.75, True, profile="other")
    rows = json.loads((tmp_path / "claims.json").read_text())
    assert len(rows) == 2 and all(tuple(r) == CLAIM_KEYS for r in rows)
    smoke = next(r for r in rows if r["profile"] == "smoke")
    assert smoke["value"] == 0.25 and smoke["holds"] is False


def test_benchmark_ratio_and_report(tmp_path):
    row = record_benchmark(tmp_path, name="t", ours=3.0, baseline=6.0, unit="s", profile="smoke",
                           device="cpu")
    assert row["ratio"] == 0.5
    _claim(tmp_path, 0.5, False)
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "f.png").write_bytes(b"")
    report = write_report(tmp_path).read_text()
    assert "a \\| b" in report and "**no**" in report and "figures/f.png" in report
    assert "0 of 1 claims hold" in report


def test_every_claim_has_the_papers_result():
    from lib.config import ROOT
    from lib.paper import PAPER_RESULTS

    ids = {c["id"] for c in json.loads((ROOT / "results" / "claims.json").read_text())}
    assert ids and ids <= set(PAPER_RESULTS), ids - set(PAPER_RESULTS)
    assert all(isinstance(v, str) and v.strip() and len(v) <= 200 for v in PAPER_RESULTS.values())


def test_report_shows_the_papers_result_side_by_side(tmp_path):
    from lib.paper import PAPER_RESULTS

    for id in ("warm-wa-geq-ens-lmc", "not-a-claim"):
        record_claim(tmp_path, id=id, paper="WARM", figure="Fig. 3", claim=f"claim {id}",
                     metric="m", value=0.5, holds=True, notebook="01", profile="smoke")
    report = write_report(tmp_path).read_text()
    assert "| notebook | claim | paper | ours | holds |" in report
    rows = {r.split(" | ")[1]: r for r in report.splitlines() if r.startswith("| 01 |")}
    assert PAPER_RESULTS["warm-wa-geq-ens-lmc"] in rows["claim warm-wa-geq-ens-lmc"]
    assert "| WARM, Fig. 3: — | m: 0.5 | yes |" in rows["claim not-a-claim"]
    assert "directions, not magnitudes" in report


def test_readme_tables_follow_the_committed_results(tmp_path, monkeypatch):
    from lib import config, results

    (tmp_path / "results").mkdir()
    (tmp_path / "README.md").write_text("intro\n<!-- claims:start -->\nstale row\n<!-- claims:end -->\n"
                                        "middle\n<!-- benchmarks:start -->\n<!-- benchmarks:end -->\n"
                                        "outro\n")
    monkeypatch.setattr(config, "ROOT", tmp_path)
    _claim(tmp_path / "results", 0.5, True, profile="default")
    _claim(tmp_path / "results", 0.1, False, profile="smoke")
    record_benchmark(tmp_path / "results", name="notebook 00 wall time", ours=100.0,
                     baseline=200.0, unit="s", profile="default", device="cpu")
    record_benchmark(tmp_path / "results", name="smoke only", ours=1.0, baseline=None, unit="s",
                     profile="smoke", device="cpu")
    results.write_report(tmp_path / "results")
    readme = (tmp_path / "README.md").read_text()
    assert "stale row" not in readme and readme.startswith("intro\n") and readme.endswith("outro\n")
    assert "middle" in readme and "| 01 | WARM, Fig. 3 | a \\| b | m: 0.5 | yes |" in readme
    assert "| notebook 00 wall time | 100 | 200 | 0.5 | s | cpu |" in readme
    assert "smoke only" not in readme and "0.1" not in readme
