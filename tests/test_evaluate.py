import itertools
import math

import numpy as np
import pytest

from lib.measure.evaluate import (
    best_of_n,
    best_of_n_win_rate,
    best_of_n_win_rates,
    bon_kl,
    pairwise_accuracy,
    pick_probabilities,
    win_rate_per_prompt,
    win_rates_by_prompt,
    within_prompt_pearson,
)


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


def test_win_rates_by_prompt_count_ties_as_half():
    a, b = np.array([[1.0, 2.0], [3.0, 3.0]]), np.array([[1.0, 1.0], [4.0, 3.0]])
    assert win_rates_by_prompt(a, b).tolist() == pytest.approx([(0.5 + 0.5 + 1 + 1) / 4, (0 + 0.5 + 0 + 0.5) / 4])
    assert win_rate_per_prompt(a, b) == pytest.approx(win_rates_by_prompt(a, b).mean())


def test_within_prompt_pearson_by_hand():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    b = np.array([[2.0, 4.0, 6.1], [3.0, 1.0, 2.0]])
    rho = within_prompt_pearson(a, b)
    assert rho[0] == pytest.approx(np.corrcoef(a[0], b[0])[0, 1]) and rho[1] == 0.0  # a constant row


def test_best_of_n_win_rates_average_to_the_win_rate():
    rng = np.random.default_rng(5)
    gold, pa, pb = rng.normal(size=(3, 4, 6))
    per_prompt = best_of_n_win_rates(pa, 2, pb, 3, gold)
    assert per_prompt.shape == (4,) and per_prompt.mean() == pytest.approx(best_of_n_win_rate(pa, 2, pb, 3, gold))


def test_pick_probabilities_sum_to_one_and_follow_the_ranking():
    rng = np.random.default_rng(3)
    proxy = rng.normal(size=(3, 9))
    for n in (1, 3, 9):
        probs = pick_probabilities(proxy, n)
        assert np.allclose(probs.sum(1), 1.0)
    top = pick_probabilities(proxy, 9)
    assert np.array_equal(top.argmax(1), proxy.argmax(1)) and np.allclose(top.max(1), 1.0)


def brute_force_win_rate(pa, na, pb, nb, gold):
    """Enumerate every (n_a-subset, n_b-subset) pair of each prompt's pool."""
    rates = []
    for a, b, g in zip(pa, pb, gold):
        total, count = 0.0, 0
        for sa in itertools.combinations(range(len(g)), na):
            top_a = [i for i in sa if a[i] == max(a[j] for j in sa)]
            for sb in itertools.combinations(range(len(g)), nb):
                top_b = [i for i in sb if b[i] == max(b[j] for j in sb)]
                total += np.mean([(g[i] > g[j]) + 0.5 * (g[i] == g[j]) for i in top_a for j in top_b])
                count += 1
        rates.append(total / count)
    return float(np.mean(rates))


@pytest.mark.parametrize("na,nb", [(1, 1), (3, 1), (2, 4)])
def test_best_of_n_win_rate_matches_enumeration(na, nb):
    rng = np.random.default_rng(na * 10 + nb)
    gold = rng.integers(0, 4, size=(3, 6)).astype(float)  # ties in gold
    pa, pb = rng.normal(size=(3, 6)), rng.integers(0, 3, size=(3, 6)).astype(float)  # ties in B
    assert best_of_n_win_rate(pa, na, pb, nb, gold) == pytest.approx(brute_force_win_rate(pa, na, pb, nb, gold))


def test_best_of_n_win_rate_of_the_gold_itself_beats_a_random_pick():
    gold = np.random.default_rng(0).normal(size=(5, 8))
    assert best_of_n_win_rate(gold, 1, gold, 1, gold) == pytest.approx(0.5)
    assert best_of_n_win_rate(gold, 8, gold, 1, gold) > 0.8
    assert best_of_n_win_rate(-gold, 8, gold, 1, gold) < 0.2


def test_win_rate_per_prompt_compares_within_prompts():
    a = np.array([[1.0, 3.0], [0.0, 0.0]])
    b = np.array([[2.0, 2.0, 2.0], [0.0, 1.0, -1.0]])
    # prompt 0: 1<2 (×3), 3>2 (×3) → 0.5; prompt 1: tie, lose, win for each a → 0.5
    assert win_rate_per_prompt(a, b) == pytest.approx(0.5)
    assert win_rate_per_prompt(b[:, :2] + 10, a) == 1.0
    with pytest.raises(ValueError):
        win_rate_per_prompt(a, b[:1])


@pytest.mark.parametrize("chosen, rejected, message", [
    ([1.0, 2.0], [1.0], "1-D of one length"), ([], [], "empty set of pairs"), ([np.nan], [1.0], "must be finite")])
def test_pairwise_accuracy_refuses_bad_input_in_one_line(chosen, rejected, message):
    with pytest.raises(ValueError, match=message):
        pairwise_accuracy(chosen, rejected)
