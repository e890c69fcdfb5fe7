"""The measurements behind WARM's premises: accuracy against the annotators rather than one draw
of labels, how much the members' errors overlap, and the geometry of their weights."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset

from lib.config import WorldConfig
from lib.measure.evaluate import choice_correct, expected_correct, label_ceiling
from lib.report.analysis import error_overlap, margin_correlation, residual_correlation, weight_geometry
from lib.world import data as D
from lib.world import world as W


def test_expected_correct_is_the_probability_that_a_fresh_label_agrees():
    r0, r1 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 0.0, 2.0, 5.0])
    p1 = np.array([0.8, 0.7, 0.4, 0.1])
    np.testing.assert_allclose(expected_correct(r0, r1, p1), [0.8, 0.3, 1.0, 0.1])
    # its mean is the expectation of the label accuracy: checked by drawing many labels
    rng = np.random.default_rng(0)
    draws = np.mean([choice_correct(r0, r1, (rng.random(4) < p1).astype(int)) for _ in range(20_000)], 0)
    np.testing.assert_allclose(draws, expected_correct(r0, r1, p1), atol=0.01)
    with pytest.raises(ValueError, match="label probabilities must lie in"):
        expected_correct(r0, r1, p1 + 1)
    with pytest.raises(ValueError, match="1-D of one length"):
        expected_correct(r0, r1[:2], p1)


def test_the_label_ceiling_is_the_bayes_choice_against_fresh_labels():
    p1 = np.array([0.8, 0.3, 0.6, 1.0])
    assert label_ceiling(p1) == pytest.approx((0.8 + 0.7 + 0.6 + 1.0) / 4)
    # the ceiling is what ranking by the annotators' own probabilities scores in expectation
    assert label_ceiling(p1) == pytest.approx(expected_correct(np.zeros(4), p1 - 0.5, p1).mean())
    # and no other ranking without ties does better (ties count as correct, as in WARM)
    rng = np.random.default_rng(0)
    assert all(expected_correct(*rng.normal(size=(2, 4)), p1).mean() <= label_ceiling(p1) + 1e-12
               for _ in range(200))
    with pytest.raises(ValueError, match="must lie in"):
        label_ceiling(p1 - 1)


def test_label_probabilities_are_the_annotator_model_of_the_world():
    cfg = WorldConfig(label_temperature=0.5, label_length_bias=0.2)
    post = W.make_post(np.random.default_rng(0), "work", "p")
    s0, s1 = f"{post.key_person} {post.key_event} .", "honestly you know ."
    ds = Dataset.from_dict({"gold_0": [W.gold_reward(post, s0)], "gold_1": [W.gold_reward(post, s1)],
                            "summary_0": [s0], "summary_1": [s1]})
    want = W.preference_probability(ds["gold_0"][0], ds["gold_1"][0], W.n_words(s0), W.n_words(s1),
                                    W.LabelModel(0.5, 0.2))
    np.testing.assert_allclose(D.label_probabilities(ds, cfg), [want])
    with pytest.raises(ValueError, match="need gold rewards"):
        D.label_probabilities(ds.map(lambda r: {"gold_0": float("nan")}), cfg)


def test_error_overlap_tells_shared_from_independent_errors():
    rng = np.random.default_rng(0)
    independent = (rng.random((4, 20_000)) > 0.3).astype(float)
    shared = np.repeat(independent[:1], 4, axis=0)
    ind, sh = error_overlap(independent), error_overlap(shared)
    assert abs(ind["error rate"] - 0.3) < 0.01 and abs(ind["all wrong"] - 0.3 ** 4) < 0.003
    assert abs(ind["all wrong if independent"] - 0.3 ** 4) < 0.003
    assert abs(ind["another wrong where one is"] - 0.3) < 0.02
    assert sh["all wrong"] == pytest.approx(sh["error rate"]) and sh["another wrong where one is"] == 1.0
    with pytest.raises(ValueError, match="≥ 2 models"):
        error_overlap(independent[:1])


def test_margin_and_residual_correlations():
    rng = np.random.default_rng(1)
    gold = rng.normal(size=(50, 8))
    shared = rng.normal(size=(50, 8))
    same = [gold + shared for _ in range(3)]  # every model makes the same error
    own = [gold + rng.normal(size=(50, 8)) for _ in range(3)]  # each its own
    assert residual_correlation(same, gold) == pytest.approx(1.0)
    assert abs(residual_correlation(own, gold)) < 0.1
    # half shared, half its own: the residuals correlate at 0.5, recovered within sampling error
    big_gold, big_shared = rng.normal(size=(400, 16)), rng.normal(size=(400, 16))
    half = [big_gold + (big_shared + rng.normal(size=(400, 16))) / np.sqrt(2) for _ in range(4)]
    assert residual_correlation(half, big_gold) == pytest.approx(0.5, abs=0.03)
    pairs = [np.stack([rng.normal(size=100), rng.normal(size=100)]) for _ in range(2)]
    assert abs(margin_correlation(pairs)) < 0.3
    assert margin_correlation([pairs[0], 2 * pairs[0] + 1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="≥ 2 models"):
        residual_correlation(same[:1], gold)


def test_weight_geometry_measures_distance_from_init_and_task_vector_cosines():
    init = {"w": torch.ones(4), "b": torch.zeros(2)}
    a = {"w": torch.tensor([2.0, 1, 1, 1]), "b": torch.zeros(2)}  # δ = e0
    b = {"w": torch.tensor([1.0, 3, 1, 1]), "b": torch.zeros(2)}  # δ = 2·e1
    c = {"w": torch.tensor([1.5, 1, 1, 1]), "b": torch.zeros(2)}  # δ = e0 / 2
    g = weight_geometry([a, b, c], [init, init, init])
    np.testing.assert_allclose(g["distance"], [0.5, 1.0, 0.25])
    np.testing.assert_allclose(g["cosine"], [[1, 0, 1], [0, 1, 0], [1, 0, 1]], atol=1e-12)


def test_the_pretraining_control_differs_from_member_0_in_its_init_alone():
    from dataclasses import asdict, replace
    from types import SimpleNamespace

    from lib import plans
    from lib.config import RMConfig
    from lib.profiles import get_profile

    profile = get_profile("default")

    class Pools:
        pl = SimpleNamespace(profile=profile)

        def member(self, i, corruption=0.0, pool=0):
            return RMConfig(seed=100 * pool + i, lr=2e-4 * (1 + i % 2), steps=275 + pool, checkpoint_steps=(137,),
                            corruption=corruption)

    controls = plans.premise_controls(Pools())
    assert len(controls) == profile.rm.n_seeds
    for p, control in enumerate(controls):
        member = Pools().member(0, 0.0, p)
        diff = {k for k, v in asdict(control).items() if asdict(member)[k] != v}
        assert diff == {"random_init"} and control.random_init and control == replace(member, random_init=True)


def test_accuracy_against_the_annotators_reads_the_pairs_of_the_eval_set():
    from lib.rm.pairs import EvalSet
    from lib.rm.scoring import correct

    p_label = np.array([0.9, 0.2, 0.6, 0.4, 0.7])  # the probabilities of the whole split
    es = EvalSet("OOD", "test_ood", rows=np.array([1, 2, 4]), labels=np.array([0, 0, 1]), clusters=np.zeros(3),
                 p_label=p_label)
    scores = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0]])  # prefers summary_1, summary_0, summary_1
    np.testing.assert_allclose(correct(scores, es), [0, 1, 1])
    np.testing.assert_allclose(correct(scores, es, "expected"), [0.2, 0.4, 0.7])
    np.testing.assert_allclose(correct(scores, es, "bayes"), [0, 0, 1])
    with pytest.raises(ValueError, match="unknown accuracy target 'gold'"):
        correct(scores, es, "gold")
    with pytest.raises(ValueError, match="needs the annotators' probabilities"):
        correct(scores, EvalSet("x", "x", np.arange(3), np.zeros(3), np.zeros(3)), "expected")


@pytest.mark.parametrize("rank_on, scored", [("validation", "ID val"), ("test_ood", "OOD"), ("ood-half", "OOD")])
def test_members_are_ranked_on_one_split_alone(rank_on, scored):
    """φ1 is chosen on `rm.rank_on`'s pairs and nothing else: with "validation" no OOD pair is
    read, and with "ood-half" the OOD claims are scored on prompts the ranking never saw."""
    from types import SimpleNamespace

    from lib.config import RMPoolConfig
    from lib.rm.pairs import EvalSet, RMPairs, half
    from lib.rm.pool import RewardModels

    n = 12
    accuracy = {"ID val": [0.6, 0.8, 0.7], "OOD": [0.9, 0.5, 0.6]}
    rms, seen = object.__new__(RewardModels), []
    rms.cfg = RMPoolConfig(m=3, rank_on=rank_on)
    rms.pairs = pairs = object.__new__(RMPairs)
    pairs.cfg = rms.cfg
    pairs.eval_sets = lambda corruption=0.0, pool=0: {"ID val": EvalSet("ID val", "validation", np.arange(n),
                                                                        np.ones(n, int), np.arange(n))}
    pairs.pairset = lambda name: SimpleNamespace(n=n, choice=np.ones(n, int), group=np.arange(n) // 2)
    pairs.label_probabilities = lambda split: None
    rms.pool = lambda corruption=0.0, pool=0: [0, 1, 2]
    rms.state = lambda i: i

    def scores(i, es):
        seen.append((es.pairset, tuple(es.rows)))
        right = np.arange(len(es.rows)) < round(len(es.rows) * accuracy[scored][i])  # ranked as labelled
        return np.stack([np.zeros(len(es.rows)), np.where(right, 1.0, -1.0)])

    rms.scorer = SimpleNamespace(scores=scores)
    assert rms.ranking() == list(np.argsort(-np.asarray(accuracy[scored]), kind="stable"))
    assert {pairset for pairset, _ in seen} == {"validation" if scored == "ID val" else "test_ood"}
    if rank_on == "ood-half":
        ranked_rows = {r for _, rows in seen for r in rows}
        ood = EvalSet("OOD", "test_ood", np.arange(n), np.ones(n, int), np.arange(n) // 2)
        scored_half = half(ood, 1)
        assert ranked_rows and not ranked_rows & set(scored_half.rows)
        assert ranked_rows | set(scored_half.rows) == set(range(n))
        assert not set(ood.clusters[list(ranked_rows)]) & set(scored_half.clusters)  # whole prompts apart
    with pytest.raises(ValueError, match="unknown rm.rank_on 'train'"):
        RMPoolConfig(rank_on="train")


def test_a_candidates_whole_run_is_projected_from_the_committed_runs_waves():
    from benchmarks.substrate_probe import RUN_TIMES, criteria, projected_minutes

    measured = {"whole": 5000.0, "prepare": 600.0, "rms": 2000.0}
    bench = [{"name": RUN_TIMES[k], "ours": v, "profile": "default"} for k, v in measured.items()]
    base = {"profile": "default", "seconds": {"prepare": 300.0, "RM 0": 60.0, "RM 1": 80.0},
            "plan": {"RM stages": 40}}
    assert projected_minutes(base, base, bench) == pytest.approx(5000 / 60)  # the baseline: the run as measured
    slower_prepare = {**base, "seconds": {**base["seconds"], "prepare": 450.0}}
    assert projected_minutes(slower_prepare, base, bench) == pytest.approx((5000 + 300) / 60)
    more_rms = {**base, "plan": {"RM stages": 60}}  # half as many RM stages again: half the RM wave again
    assert projected_minutes(more_rms, base, bench) == pytest.approx((5000 + 1000) / 60)
    faster_rms = {**base, "seconds": {**base["seconds"], "RM 0": 30.0, "RM 1": 40.0}}
    assert projected_minutes(faster_rms, base, bench) == pytest.approx((5000 - 1000) / 60)
    assert projected_minutes(base, base, [b for b in bench if b["name"] != RUN_TIMES["rms"]]) is None
    assert projected_minutes({**base, "profile": "smoke"}, {**base, "profile": "smoke"}, bench) is None
    cached = {**slower_prepare, "prepare": {"key": "comparisons-0", "cached": True}}  # its 450 s: no measure
    assert projected_minutes(cached, base, bench) is None
    assert projected_minutes(cached, base, bench, measured_prepare=300.0) == pytest.approx(5000 / 60)
    fast, slow = {**base, "machine speed": 120.0}, {**base, "machine speed": 80.0}  # the same work on two machines
    slow_times = {**slow, "seconds": {k: 1.5 * v for k, v in base["seconds"].items()}}
    assert projected_minutes(slow_times, fast, bench) == pytest.approx(5000 / 60)
    assert projected_minutes(slow, fast, bench) == pytest.approx((5000 - 600 / 3 - 2000 / 3) / 60)
    assert projected_minutes(slow, base, bench) is None  # one speed unknown
    recorded = json.loads((Path(__file__).parents[1] / "docs" / "substrate-rows.jsonl").read_text().splitlines()[0])
    late = {**recorded, "seconds": {**recorded["seconds"], "prepare": 4 * recorded["seconds"]["prepare"]}}
    assert criteria(recorded, recorded, bench)["projected run, min (≤ 90)"] == "83 ✓"  # 5,000 s
    assert criteria(late, recorded, bench)["projected run, min (≤ 90)"] == "113 ✗"  # + 3 × 600 s
    assert criteria(recorded)["projected run, min (≤ 90)"] == "—"  # no baseline or run times given


def test_a_cached_prepare_takes_the_time_of_the_row_that_built_it(tmp_path):
    from benchmarks.substrate_probe import PREMISE_FIELDS, TABLE, record

    doc, rows = tmp_path / "substrate.md", tmp_path / "rows.jsonl"
    doc.write_text(f"head\n{TABLE[0]}\n{TABLE[1]}\ntail\n")
    first = json.loads((Path(__file__).parents[1] / "docs" / "substrate-rows.jsonl").read_text().splitlines()[0])
    recorded = {k: v for k, v in first.items() if k in PREMISE_FIELDS}  # the probe's row, before its label
    base = {**recorded, "prepare": {"key": "comparisons-a", "cached": False}}
    built = {**base, "overrides": {"world.x": 1}, "prepare": {"key": "comparisons-b", "cached": False},
             "seconds": {**base["seconds"], "prepare": 2 * base["seconds"]["prepare"]}}
    reread = {**built, "overrides": {"world.x": 1, "rm.y": 2}, "prepare": {"key": "comparisons-b", "cached": True},
              "seconds": {**base["seconds"], "prepare": 3.0}}
    orphan = {**reread, "prepare": {"key": "comparisons-c", "cached": True}}
    for row in (base, built, reread, orphan):
        record(row, "row", rows=rows, doc=doc, commit="abc")
    column = [line.split(" | ")[-3] for line in doc.read_text().splitlines() if line.startswith("| row")]
    assert column[1] == column[2] != column[0]  # the cached row projects as the row that built its wave
    assert column[3] == "—"  # no row measured its wave
    # on machines of recorded speed: a cached row on a machine half as fast, its RMs taking twice the
    # time, is the same work as the row that built its wave
    fast = {"machine speed": 100.0, "prepare": {"key": "comparisons-s", "cached": False}}
    slow = {**reread, "machine speed": 50.0, "prepare": {"key": "comparisons-s", "cached": True},
            "seconds": {k: (2 * v if k.startswith("RM ") else v) for k, v in reread["seconds"].items()}}
    for row in ({**base, **fast, "prepare": {"key": "comparisons-r", "cached": False}}, {**built, **fast}, slow,
                {**slow, "machine speed": None}):
        record({k: v for k, v in row.items() if v is not None}, "sped", rows=rows, doc=doc, commit="abc")
    column = [line.split(" | ")[-3] for line in doc.read_text().splitlines() if line.startswith("| sped")]
    assert column[1] == column[2] != column[0] and column[1] != "—"
    assert column[3] == "—"  # its own speed unknown, the wave's known
