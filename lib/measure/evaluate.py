"""Evaluation: pairwise accuracy, best-of-N and its KL, win rates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | Sequence[float]


def _np(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def pairwise_accuracy(r_chosen: ArrayLike, r_rejected: ArrayLike) -> float:
    """Mean of 1[r(x, y+) ≥ r(x, y−)]: ties count as correct, as in WARM."""
    a, b = _np(r_chosen), _np(r_rejected)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"chosen and rejected rewards must be 1-D of one length; got {a.shape} and {b.shape}")
    if a.size == 0:
        raise ValueError("accuracy of an empty set of pairs")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("rewards must be finite")
    return float(np.mean(a >= b))


def choice_correct(r_0: ArrayLike, r_1: ArrayLike, choice: ArrayLike) -> np.ndarray:
    """Per pair, 1.0 if the rewards of summary_0 / summary_1 rank the labelled summary first
    (`choice` 1: summary_1 preferred), else 0.0; ties count as correct (WARM)."""
    r_0, r_1, c = _np(r_0), _np(r_1), np.asarray(choice)
    if not (r_0.shape == r_1.shape == c.shape) or r_0.ndim != 1:
        raise ValueError(f"rewards and labels must be 1-D of one length; got {r_0.shape}, "
                         f"{r_1.shape}, {c.shape}")
    return np.where(c == 1, r_1 >= r_0, r_0 >= r_1).astype(float)


def choice_accuracy(r_0: ArrayLike, r_1: ArrayLike, choice: ArrayLike) -> float:
    """Pairwise accuracy of rewards of summary_0 / summary_1 against labels `choice` (1: summary_1
    preferred); ties count as correct."""
    correct = choice_correct(r_0, r_1, choice)
    if correct.size == 0:
        raise ValueError("accuracy of an empty set of pairs")
    return float(correct.mean())


def expected_correct(r_0: ArrayLike, r_1: ArrayLike, p_1: ArrayLike) -> np.ndarray:
    """Per pair, the probability that a fresh label from the annotators agrees with the rewards'
    ranking: `p_1` (the probability that summary_1 is preferred) where r_1 > r_0, 1 − `p_1` where
    r_0 > r_1, and 1 on a tie (ties count as correct). Its mean has the expectation of the label
    accuracy without the noise of one draw of labels."""
    r_0, r_1, p = _np(r_0), _np(r_1), _np(p_1)
    if not (r_0.shape == r_1.shape == p.shape) or r_0.ndim != 1:
        raise ValueError(f"rewards and probabilities must be 1-D of one length; got {r_0.shape}, "
                         f"{r_1.shape}, {p.shape}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("label probabilities must lie in [0, 1]")
    return np.where(r_1 > r_0, p, np.where(r_0 > r_1, 1.0 - p, 1.0))


def label_ceiling(p_1: ArrayLike) -> float:
    """The accuracy against sampled labels that no ranking without ties beats in expectation: the
    annotators' own Bayes choice agrees with a fresh label with probability max(p, 1 − p) per
    pair."""
    p = _np(p_1)
    if ((p < 0) | (p > 1)).any():
        raise ValueError("label probabilities must lie in [0, 1]")
    return float(np.maximum(p, 1.0 - p).mean())


def fit_bradley_terry(diff: torch.Tensor, l2: float, max_iter: int = 200) -> torch.Tensor:
    """Linear Bradley–Terry reward w on feature differences φ(y+) − φ(y−), shaped (pairs, d):
    argmin −mean log σ(diff·w) + l2·‖w‖², by L-BFGS in float64 (deterministic)."""
    diff = diff.double()
    w = torch.zeros(diff.shape[1], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = -torch.nn.functional.logsigmoid(diff @ w).mean() + l2 * w.square().sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def bon_kl(n: int) -> float:
    """KL(best-of-n ‖ base) = log n − (n − 1)/n (Stiennon et al.; Beirami et al. show it bounds)."""
    if n < 1:
        raise ValueError(f"best-of-n needs n ≥ 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n_weights(k: int, n: int) -> np.ndarray:
    """P(the i-th smallest of k pool items is the max of a uniform n-subset) = C(i−1, n−1)/C(k, n)."""
    if not 1 <= n <= k:
        raise ValueError(f"best-of-n needs 1 ≤ n ≤ pool size, got n={n}, pool size {k}")
    i = np.arange(1, k + 1)
    with np.errstate(invalid="ignore"):
        logw = (np.vectorize(math.lgamma)(np.maximum(i, n)) - math.lgamma(n)
                - np.vectorize(math.lgamma)(np.maximum(i - n + 1, 1))
                - (math.lgamma(k + 1) - math.lgamma(n + 1) - math.lgamma(k - n + 1)))
    return np.where(i >= n, np.exp(logw), 0.0)


def pick_probabilities(proxy_scores: ArrayLike, n: int) -> np.ndarray:
    """P(sample j is the one best-of-n picks), shaped (prompts, K) like `proxy_scores`.

    Best-of-n draws n of the K pool samples of a prompt uniformly without replacement and keeps the
    one with the highest proxy score; the i-th smallest of K is the pick with probability
    C(i−1, n−1)/C(K, n). Ties in proxy score are broken uniformly at random: tied samples share
    the probability of their run of ranks equally.
    """
    proxy = _np(proxy_scores)
    if proxy.ndim != 2:
        raise ValueError(f"proxy scores must be (prompts, K); got shape {proxy.shape}")
    weights = best_of_n_weights(proxy.shape[1], n)
    order = np.argsort(proxy, axis=1, kind="stable")
    probs = np.zeros_like(proxy)
    for row in range(proxy.shape[0]):
        w = weights.copy()
        _, start, counts = np.unique(proxy[row, order[row]], return_index=True, return_counts=True)
        for s, c in zip(start, counts):
            if c > 1:
                w[s: s + c] = w[s: s + c].mean()
        probs[row, order[row]] = w
    return probs


def best_of_n(proxy_scores: ArrayLike, gold_scores: ArrayLike, n: int) -> np.ndarray:
    """Unbiased expected gold score of best-of-n under the proxy, per prompt.

    Inputs are shaped (prompts, K), K ≥ n samples per prompt; the gold score counted is always
    that of the sample the proxy picked (`pick_probabilities`: ties in proxy score are broken
    uniformly at random, so tied samples share their mean gold score).
    """
    proxy, gold = _np(proxy_scores), _np(gold_scores)
    if proxy.shape != gold.shape or proxy.ndim != 2:
        raise ValueError(f"proxy and gold scores must both be (prompts, K); got {proxy.shape} "
                         f"and {gold.shape}")
    return (pick_probabilities(proxy, n) * gold).sum(1)


def best_of_n_win_rates(proxy_a: ArrayLike, n_a: int, proxy_b: ArrayLike, n_b: int,
                        gold_scores: ArrayLike) -> np.ndarray:
    """Per prompt, P(gold of A's best-of-n_a pick > gold of B's best-of-n_b pick) + ½·P(equal),
    exactly, for independent draws from one pool (prompts, K). `n_b = 1` is a random sample of the
    policy (B's proxy is then irrelevant)."""
    gold = _np(gold_scores)
    pa, pb = pick_probabilities(proxy_a, n_a), pick_probabilities(proxy_b, n_b)
    if pa.shape != gold.shape or pb.shape != gold.shape:
        raise ValueError("proxy and gold scores must share one (prompts, K) shape")
    beats = (gold[:, :, None] > gold[:, None, :]) + 0.5 * (gold[:, :, None] == gold[:, None, :])
    return np.einsum("pi,pij,pj->p", pa, beats, pb)


def best_of_n_win_rate(proxy_a: ArrayLike, n_a: int, proxy_b: ArrayLike, n_b: int,
                       gold_scores: ArrayLike) -> float:
    """`best_of_n_win_rates` averaged over prompts."""
    return float(best_of_n_win_rates(proxy_a, n_a, proxy_b, n_b, gold_scores).mean())


def win_rates_by_prompt(scores_a: ArrayLike, scores_b: ArrayLike) -> np.ndarray:
    """Per prompt, P(a > b) + ½·P(a = b) over every pair of a sample of A and a sample of B for
    that prompt; inputs shaped (prompts, samples per prompt)."""
    a, b = _np(scores_a), _np(scores_b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0] or a.shape[0] == 0:
        raise ValueError(f"scores must be (prompts, samples) for the same prompts; got {a.shape}, {b.shape}")
    d = a[:, :, None] - b[:, None, :]
    return ((d > 0) + 0.5 * (d == 0)).mean(axis=(1, 2))


def win_rate_per_prompt(scores_a: ArrayLike, scores_b: ArrayLike) -> float:
    """`win_rates_by_prompt` averaged over prompts."""
    return float(win_rates_by_prompt(scores_a, scores_b).mean())


def within_prompt_pearson(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Pearson correlation of `a` and `b` across the samples of each prompt, shaped (prompts,);
    a prompt whose samples are constant under either gets 0."""
    a, b = _np(a), _np(b)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"inputs must share one (prompts, samples) shape; got {a.shape}, {b.shape}")
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    norm = np.sqrt((a ** 2).sum(1) * (b ** 2).sum(1))
    return np.divide((a * b).sum(1), norm, out=np.zeros(len(a)), where=norm > 0)
