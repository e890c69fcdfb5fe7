"""Intervals and verdicts (`lib.measure.stats`): the rule, coverage, pairing, clusters, seeds, determinism."""

import numpy as np
import pytest

from lib.measure.stats import (
    Estimate,
    PerSeed,
    bootstrap,
    column_bounds,
    extreme_bootstrap,
    fmt,
    nested_bootstrap,
    prompts_needed,
    prompts_needed_line,
    seeds_interval,
    verdict,
)


@pytest.mark.parametrize("ci, direction, expected", [
    ((0.1, 0.3), ">", "holds"), ((-0.3, -0.1), ">", "fails"), ((-0.1, 0.1), ">", "inconclusive"),
    ((-0.3, -0.1), "<", "holds"), ((0.1, 0.3), "<", "fails"), ((-0.1, 0.1), "<", "inconclusive"),
    ((0.0, 0.2), ">", "inconclusive"), ((-0.2, 0.0), ">", "inconclusive"),  # the threshold at an end
    ((-0.2, 0.0), "<", "inconclusive"), ((0.0, 0.2), "<", "inconclusive"),
])
def test_verdict_rule_on_hand_made_intervals(ci, direction, expected):
    assert verdict(ci, 0.0, direction) == expected


def test_verdict_against_a_threshold_other_than_zero():
    assert verdict((0.51, 0.6), 0.5, ">") == "holds" and verdict((0.45, 0.5), 0.5, ">") == "inconclusive"


@pytest.mark.parametrize("ci, direction", [((0.3, 0.1), ">"), ((0.1, 0.3), ">="), ((np.nan, 0.1), "<")])
def test_verdict_refuses_bad_input(ci, direction):
    with pytest.raises(ValueError):
        verdict(ci, 0.0, direction)


def test_bootstrap_covers_the_true_mean_about_95_percent_of_the_time():
    """200 data sets of 128 items (the size of the chapters' prompt sets), the default bootstrap."""
    rng = np.random.default_rng(0)
    covered = [bootstrap(rng.exponential(1.0, size=128), seed=i).ci for i in range(200)]
    rate = np.mean([low <= 1.0 <= high for low, high in covered])
    assert 0.92 <= rate <= 0.98, rate


def test_paired_interval_is_narrower_when_models_agree_on_most_items():
    rng = np.random.default_rng(1)
    a = (rng.random(4000) < 0.7).astype(float)
    b = a.copy()
    flip = rng.random(4000) < 0.07  # the two models disagree on 7% of the items
    b[flip] = 1 - b[flip]
    paired = bootstrap(np.stack([a, b], 1), lambda m: m[..., 0] - m[..., 1])
    unpaired = bootstrap({"a": a, "b": b}, lambda m: m["a"][..., 0] - m["b"][..., 0])
    assert paired.value == pytest.approx(unpaired.value)
    assert (paired.ci[1] - paired.ci[0]) < 0.5 * (unpaired.ci[1] - unpaired.ci[0])


def test_clusters_widen_the_interval_of_correlated_items():
    rng = np.random.default_rng(2)
    cluster = np.repeat(np.arange(200), 10)
    x = rng.normal(size=200)[cluster] + 0.1 * rng.normal(size=2000)  # items of a cluster move together
    naive, clustered = bootstrap(x), bootstrap(x, clusters=cluster)
    assert clustered.n == naive.n == 2000
    assert (clustered.ci[1] - clustered.ci[0]) > 2 * (naive.ci[1] - naive.ci[0])


def test_same_seed_same_interval_bit_for_bit():
    x = np.random.default_rng(3).random((3, 500, 2))
    assert bootstrap(x[0], lambda m: m[..., 0] - m[..., 1], seed=5) == \
        bootstrap(x[0], lambda m: m[..., 0] - m[..., 1], seed=5)
    assert nested_bootstrap(x, lambda m: m.min(-1), seed=5) == nested_bootstrap(x, lambda m: m.min(-1), seed=5)
    assert bootstrap(x[0][:, 0], seed=5) != bootstrap(x[0][:, 0], seed=6)


def test_nested_interval_covers_the_spread_across_seeds():
    """Three seeds whose means differ by far more than their item noise: the nested interval spans
    them, while an interval over the items of one seed is narrow around that seed's mean."""
    rng = np.random.default_rng(4)
    x = np.stack([rng.normal(mu, 0.1, size=1000) for mu in (0.0, 1.0, 2.0)])
    nested = nested_bootstrap(x)
    assert nested.kind == "nested" and nested.seeds == 3 and nested.n == 1000
    assert nested.value == pytest.approx(x.mean())
    assert nested.ci[0] < 0.5 and nested.ci[1] > 1.5
    one = bootstrap(x[0])
    assert one.ci[1] - one.ci[0] < 0.05


def test_seeds_with_their_own_items_are_resampled_on_their_own():
    """Pools trained on disjoint data are scored on different pairs: the nested bootstrap takes one
    array per seed, counts every distinct item, and, with one seed, is that seed's own bootstrap."""
    rng = np.random.default_rng(6)
    own = PerSeed(rng.normal(mu, 1.0, size=n) for mu, n in ((0.0, 900), (1.0, 1100), (2.0, 1000)))
    groups = [np.arange(len(x)) // 4 for x in own]
    est = nested_bootstrap(own, clusters=groups)
    assert est.n == 3000 and est.seeds == 3
    assert est.value == pytest.approx(np.mean([x.mean() for x in own]))
    assert est.ci[0] < 0.5 and est.ci[1] > 1.5  # the spread across seeds
    alone = nested_bootstrap(PerSeed(own[:1]), clusters=groups[:1], seed=7)
    assert alone.ci == pytest.approx(bootstrap(own[0], clusters=groups[0], seed=7).ci, abs=1e-12)
    # a shared sample next to per-seed ones, as notebook 02's train-to-OOD comparison
    shared = rng.normal(3.0, 1.0, size=(3, 500))
    both = nested_bootstrap({"own": own, "shared": shared}, lambda m: m["shared"][..., 0] - m["own"][..., 0],
                            clusters={"own": groups, "shared": None})
    assert both.n == 3500 and both.value == pytest.approx(shared.mean() - est.value)
    assert both == nested_bootstrap({"own": own, "shared": shared}, lambda m: m["shared"][..., 0] - m["own"][..., 0],
                                    clusters={"own": groups, "shared": None})
    with pytest.raises(ValueError, match="one cluster array per seed expected: 2 for 3 seeds"):
        nested_bootstrap(own, clusters=groups[:2])
    with pytest.raises(ValueError, match="at least one evaluation item"):
        nested_bootstrap(PerSeed([np.ones(3), np.zeros(0)]))
    with pytest.raises(ValueError, match="per-seed items need nested_bootstrap"):
        bootstrap(own)


def test_interval_always_contains_the_point_estimate():
    x = np.random.default_rng(5).random((200, 8))
    est = bootstrap(x, lambda m: m.max(-1))  # a biased statistic: the max of 8 means
    assert est.ci[0] <= est.value <= est.ci[1]


def test_seeds_interval_and_prompts_needed():
    est = seeds_interval([0.1, 0.2, 0.15])
    assert est.kind == "seeds" and est.seeds == 3
    assert 0.1 - 1e-12 <= est.ci[0] <= est.value <= est.ci[1] <= 0.2 + 1e-12
    wide = Estimate(0.01, (-0.02, 0.04), "bootstrap", n=100)
    assert prompts_needed(wide) == 900  # half-width 0.03 → 0.01 needs (0.03/0.01)² = 9× the items
    line = prompts_needed_line(wide, now=100)
    assert line.startswith("about 900 prompts") and line.endswith("(now 100)")
    on_threshold = Estimate(0.0, (-0.02, 0.02), "bootstrap", n=100)
    assert prompts_needed(on_threshold) is None and "None" not in prompts_needed_line(on_threshold)


def test_a_zero_is_never_printed_with_a_sign():
    assert fmt(-0.0) == "0" and fmt(-1e-9, ".3f") == "0.000" and fmt(-0.5) == "-0.5"
    assert f"{Estimate(-0.0, (-0.0, -0.0), 'bootstrap', n=1):.4g}" == "0 [0, 0]"


@pytest.mark.parametrize("values", [np.array([]), np.array([1.0, np.nan]), {"a": np.zeros(0)}])
def test_bad_item_values_are_refused(values):
    with pytest.raises(ValueError):
        bootstrap(values)


def test_pools_on_shared_pairs_stack_and_pools_on_their_own_pairs_do_not():
    from lib.report.analysis import across_pools
    from lib.rm.pairs import EvalSet

    def subset(pairset, n):
        return EvalSet("s", pairset, np.arange(n), np.zeros(n, int), np.arange(n) // 2)

    values = [np.ones(4), np.zeros(4)]
    stacked, clusters = across_pools([subset("test_ood", 4)] * 2, values)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (2, 4) and clusters.shape == (4,)
    own, clusters = across_pools([subset("train-0.25-b0", 4), subset("train-0.25-b1", 4)], values)
    assert isinstance(own, PerSeed) and len(clusters) == 2  # equal sizes, yet different pairs
    assert nested_bootstrap(own, clusters=clusters).n == 8


def test_a_per_seed_array_of_the_wrong_shape_is_one_clear_error():
    with pytest.raises(ValueError, match=r"PerSeed of \(items\[, stats\]\), got shape \[\(3,\), \(2, 2, 2\)\]"):
        nested_bootstrap(PerSeed([np.ones(3), np.ones((2, 2, 2))]))


def test_extreme_interval_covers_the_true_maximum_where_the_percentile_bootstrap_does_not():
    """40 columns of equal true mean 0 (the hard case: every column can be the max), paired items
    with a shared item effect, as RMs scored on the same pairs. The percentile bootstrap of the max
    is biased upwards and its interval misses the true max; `extreme_bootstrap` covers it."""
    rng = np.random.default_rng(0)
    naive, extreme = [], []
    for i in range(100):
        x = rng.normal(size=(200, 1)) + rng.normal(size=(200, 40))
        truth_in = lambda ci: ci[0] <= 0.0 <= ci[1]
        naive.append(truth_in(bootstrap(x, lambda m: m.max(-1), n_boot=500, seed=i).ci))
        extreme.append(truth_in(extreme_bootstrap(x, "max", n_boot=500, seed=i).ci))
    assert np.mean(extreme) >= 0.9
    assert np.mean(naive) < 0.5


def test_extreme_interval_of_a_clear_maximum_and_its_mirror():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 6)) * 0.1 + np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.0])
    top = extreme_bootstrap(x, "max")
    assert top.kind == "extreme" and top.n == 400
    assert top.ci[0] <= top.value <= top.ci[1] and top.ci[0] > 0.9 and top.ci[1] < 1.1
    bottom = extreme_bootstrap(-x, "min")
    assert bottom.value == pytest.approx(-top.value) and bottom.ci == pytest.approx((-top.ci[1], -top.ci[0]))
    assert extreme_bootstrap(x, "max", seed=3) == extreme_bootstrap(x, "max", seed=3)
    means, low, high = column_bounds(x, seed=3)
    assert means.shape == low.shape == high.shape == (6,) and np.all(low <= means) and np.all(means <= high)
    assert extreme_bootstrap(x, "max", seed=3).ci[1] == pytest.approx(high.max())  # its upper end
    zero = extreme_bootstrap(np.zeros((10, 2)), "min")  # e.g. a run whose peak is its last step
    assert all(np.copysign(1.0, v) == 1.0 for v in (zero.value, *zero.ci))  # printed as 0, never −0
    with pytest.raises(ValueError, match="kind must be"):
        extreme_bootstrap(x, "mean")
    with pytest.raises(ValueError, match="items, columns"):
        extreme_bootstrap(x[:, 0], "max")


def test_extreme_interval_over_seeds_reads_the_nested_bootstrap_of_each_column():
    """With seeds, each column is a mean over seeds and items, resampled as `nested_bootstrap`
    resamples it: where one column clearly holds the maximum, the upper end is that column's own
    nested interval's upper end, and the lower end, bounding every column at once, lies lower."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 300, 5)) * 0.5 + np.array([0.0, 0.1, 0.2, 0.3, 1.0])
    top, alone = extreme_bootstrap(x, "max", seeded=True), nested_bootstrap(x[..., -1])
    assert top.seeds == 3 and top.n == 300 and top.value == pytest.approx(alone.value)
    assert top.ci[1] == pytest.approx(alone.ci[1]) and top.ci[0] < alone.ci[0]
    with pytest.raises(ValueError, match="seeds, items, columns"):
        extreme_bootstrap(x[0], "max", seeded=True)
