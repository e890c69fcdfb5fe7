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
