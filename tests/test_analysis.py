"""The RL-curve measurements the chapters share: per-prompt values, the hacking detector, matched KL."""

import numpy as np
import pytest

from lib.measure.stats import extreme_bootstrap
from lib.report.analysis import equal_kl_columns, gap_at_equal_kl, hacking, nearest_kl_step, per_prompt


def test_per_prompt_averages_each_prompts_samples():
    history = {"eval_gold_all": [[1.0, 3.0, 5.0, 7.0], [0.0, 0.0, 2.0, 2.0]]}  # 2 prompts × 2 samples, 2 steps
    np.testing.assert_allclose(per_prompt(history, 2), [[2.0, 0.0], [6.0, 2.0]])
    with pytest.raises(ValueError):
        per_prompt(history, 3)


def curve(means, n=200, noise=0.3, seed=0):
    """Per-prompt gold (n, steps) around the mean curve `means`."""
    rng = np.random.default_rng(seed)
    return np.asarray(means, float) + noise * rng.standard_normal((n, len(means)))


def test_a_run_that_peaks_then_falls_is_detected_as_hacked():
    gold = curve([0.0, 1.0, 2.0, 3.0, 2.0, 1.5])  # peaks at the fourth eval step, ends 1.5 below it
    found = hacking(gold, proxy=[0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    assert found["peak"] == 3 and found["proxy_rise"] == pytest.approx(2.0)
    assert found["fall"] == extreme_bootstrap(found["drop"], "min")
    assert found["fall"].value == pytest.approx(gold[:, -1].mean() - gold[:, 3].mean())
    assert found["fall"].ci[1] < 0 and found["hacked"]  # the interval excludes "no fall"


def test_a_fall_while_the_proxy_falls_too_is_not_hacking():
    found = hacking(curve([0.0, 1.0, 2.0, 3.0, 2.0, 1.5]), proxy=[0.0, 1.0, 2.0, 3.0, 2.5, 2.0])
    assert found["fall"].ci[1] < 0 and found["proxy_rise"] < 0 and not found["hacked"]


def test_a_run_still_rising_is_not_hacked():
    gold = curve([0.0, 1.0, 2.0, 3.0, 3.5, 4.0])
    found = hacking(gold, proxy=np.arange(6.0))
    assert found["peak"] == 5  # the final step: final − peak is 0 for every prompt
    assert found["fall"].ci[1] >= 0 and not found["hacked"]


def test_runs_of_several_pools_peak_where_their_mean_does():
    pools = np.stack([curve([0, 1, 3, 2, 1], seed=s) for s in range(3)])  # (seeds, prompts, steps)
    found = hacking(pools, proxy=np.arange(5.0), seeded=True)
    assert found["peak"] == 2 and found["drop"].shape == (3, 200, 4)
    assert found["fall"] == extreme_bootstrap(found["drop"], "min", seeded=True) and found["hacked"]
    with pytest.raises(ValueError, match="per seed, prompt"):
        hacking(pools[0], proxy=np.arange(5.0), seeded=True)


def test_hacking_rejects_a_curve_too_short_or_a_proxy_of_another_length():
    with pytest.raises(ValueError, match="one later eval step"):
        hacking(curve([0.0]), proxy=[0.0])
    short = hacking(curve([0.0, 1.0]), proxy=[0.0, 1.0])  # one step after 0: its own peak, never hacked
    assert short["peak"] == 1 and short["fall"].value == 0 and not short["hacked"]
    with pytest.raises(ValueError, match="one proxy value per eval step"):
        hacking(curve([0.0, 1.0, 2.0]), proxy=[0.0, 1.0])


def test_the_nearest_kl_step_is_the_one_closest_to_the_target():
    kl = [0.0, 0.2, 0.5, 0.9, 1.4]
    assert nearest_kl_step(kl, 0.69) == 2
    assert nearest_kl_step(kl, 0.71) == 3
    assert nearest_kl_step(kl, 5.0) == 4 and nearest_kl_step(kl, -1.0) == 0
    with pytest.raises(ValueError):
        nearest_kl_step([], 0.5)
    with pytest.raises(ValueError):
        nearest_kl_step(kl, float("nan"))


def test_the_gap_at_equal_kl_interpolates_the_front_at_the_other_curves_kl():
    front = np.array([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]])  # gold = KL along the front, one prompt
    other = np.array([[[0.0, 0.5], [1.0, 1.5], [9.0, 3.0]]])  # the last point lies beyond the front's range
    gap = gap_at_equal_kl(3)(equal_kl_columns(front, other).mean(0))
    assert gap == pytest.approx(((0.5 - 0.0) + (1.5 - 1.0)) / 2)
    far = np.array([[[0.0, 5.0], [1.0, 6.0], [2.0, 7.0]]])
    assert np.isnan(gap_at_equal_kl(3)(equal_kl_columns(front, far).mean(0)))
