import itertools
import math

import numpy as np
import pytest

from lib.evaluate import best_of_n, bon_kl, pairwise_accuracy, win_rate


def brute_force_best_of_n(proxy, gold, n):
    """Average over every n-subset of the gold score of the proxy's pick (ties: mean gold)."""
    out = []
    for p, g in zip(proxy, gold):
        vals = []
        for sub in itertools.combinations(range(len(p)), n):
            top = max(p[i] for i in sub)
            vals.append(np.mean([g[i] for i in sub if p[i] == top]))
        out.append(np.mean(vals))
    return np.array(out)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_best_of_n_matches_enumeration(n):
    rng = np.random.default_rng(n)
    proxy, gold = rng.normal(size=(4, 7)), rng.normal(size=(4, 7))
    assert np.allclose(best_of_n(proxy, gold, n), brute_force_best_of_n(proxy, gold, n))


def test_best_of_n_with_ties_matches_enumeration():
    rng = np.random.default_rng(0)
    proxy = rng.integers(0, 3, size=(5, 6)).astype(float)
    gold = rng.normal(size=(5, 6))
    for n in (2, 4):
        assert np.allclose(best_of_n(proxy, gold, n), brute_force_best_of_n(proxy, gold, n))


def test_gold_follows_the_proxy_choice():
    gold = np.array([[0.0, 1.0, 2.0, 3.0]])
    aligned = best_of_n(gold, gold, 4)[0]
    misaligned = best_of_n(-gold, gold, 4)[0]
    assert aligned == 3.0 and misaligned == 0.0
    perm = np.random.default_rng(1).permutation(4)
    assert best_of_n(gold[:, perm], gold[:, perm], 4)[0] == 3.0


def test_best_of_1_is_the_mean_and_n_is_checked():
    gold = np.arange(8.0).reshape(2, 4)
    assert np.allclose(best_of_n(np.zeros_like(gold), gold, 1), gold.mean(1))
    with pytest.raises(ValueError):
        best_of_n(gold, gold, 5)


def test_bon_kl():
    assert bon_kl(1) == 0.0
    assert math.isclose(bon_kl(4), math.log(4) - 0.75)
    assert all(bon_kl(2 * n) > bon_kl(n) for n in (1, 2, 8, 64))


def test_pairwise_accuracy_counts_ties_as_correct():
    assert pairwise_accuracy([1.0, 0.0, 2.0], [0.0, 0.0, 3.0]) == pytest.approx(2 / 3)


def test_win_rate_half_on_ties():
    assert win_rate([1, 2, 3], [1, 1, 4]) == pytest.approx(0.5)
