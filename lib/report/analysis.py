"""Measurements the chapters share, each with the per-item values its intervals need.

- Curves with bands: per column of item values, the point estimate and its 95% interval
  (`column_intervals`), across seeds when there are seeds (nested bootstrap), else over items.
- Best-of-N on one sample pool: the expected gold of the pick per prompt and N (`bon_gold`).
- Alignment of a reward with gold on the policy's own samples: within-prompt correlations with
  the gold reward, the length and the hallucination term (`alignment`).
- What a reward weighs on comparison pairs, in the gold reward's own terms (`term_weights`).
- RL curves: per-prompt eval values (`per_prompt`), reward hacking (`hacking`), the eval step at
  a policy's own KL (`nearest_kl_step`) and the gap between two curves at equal KL.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import torch

from lib.measure.evaluate import best_of_n, within_prompt_pearson
from lib.measure.stats import PerSeed, bootstrap, extreme_bootstrap, nested_bootstrap
from lib.merge import global_norm, task_vector, weight_average
from lib.rm.scoring import correct
from lib.world import data as D
from lib.world import world as W


def column_intervals(values: np.ndarray, clusters=None, seeded: bool = False,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column of `values` ((items, cols), or (seeds, items, cols) with `seeded`): the mean and
    the 95% interval of the mean (nested bootstrap over seeds and items, or over items)."""
    values = np.asarray(values, dtype=float)
    fn = nested_bootstrap if seeded else bootstrap
    out = [fn(values[..., c], clusters=clusters, seed=seed) for c in range(values.shape[-1])]
    return tuple(np.array(x) for x in zip(*[(e.value, e.ci[0], e.ci[1]) for e in out]))


def across_pools(eval_sets: Sequence, values: Sequence[np.ndarray]) -> tuple:
    """Per-item values of seeded pools on one named subset, with their clusters, ready for
    `nested_bootstrap`: stacked (seeds, items, …) when every pool was scored on the same pairs (ID
    validation, OOD), a `PerSeed` list when each pool has its own (a corrupt pool's training
    pairs, from its own block of posts)."""
    first = eval_sets[0]
    if all(es.pairset == first.pairset and np.array_equal(es.rows, first.rows) for es in eval_sets):
        return np.stack(values), first.clusters
    return PerSeed(values), [es.clusters for es in eval_sets]


def bon_gold(proxy: np.ndarray, gold: np.ndarray, ns: Sequence[int]) -> np.ndarray:
    """Expected gold of the best-of-N pick under `proxy`, per prompt and N: (prompts, len(ns))."""
    return np.stack([best_of_n(proxy, gold, n) for n in ns], axis=1)


def sample_facts(pool: dict) -> dict[str, np.ndarray]:
    """Per sample of a pool (prompts, K): its number of words and, in the synthetic world, its
    hallucination term (− the count of facts not in the post)."""
    words = np.array([[W.n_words(s) for s in row] for row in pool["samples"]], dtype=float)
    facts = {"#words": words}
    try:
        posts = [W.parse_post(p) for p in pool["posts"]["post"]]
    except ValueError:  # real posts: no facts to parse
        return facts
    facts["hallucination"] = np.array([[W.gold_breakdown(post, s)["hallucination"] for s in row]
                                       for post, row in zip(posts, pool["samples"])])
    return facts


def alignment(scores: dict[str, np.ndarray], pool: dict, facts: dict | None = None) -> pd.DataFrame:
    """Within-prompt Pearson ρ of each reward (prompts, K) with the gold reward and with each fact
    of `sample_facts`, averaged over prompts, with the 95% interval of ρ(·, gold) over prompts."""
    facts = facts or sample_facts(pool)
    rows = {}
    for name, s in scores.items():
        est = bootstrap(within_prompt_pearson(s, pool["gold"]))
        rows[name] = {"ρ(·, gold)": est.value, "95% interval": f"[{est.ci[0]:.2f}, {est.ci[1]:.2f}]",
                      **{f"ρ(·, {k})": float(within_prompt_pearson(s, v).mean()) for k, v in facts.items()}}
    return pd.DataFrame(rows).T


def term_weights(rewards: dict[str, np.ndarray], pairs) -> pd.DataFrame:
    """What each reward weighs on comparison pairs (synthetic world): the least-squares fit of its
    difference within a pair (summary 1 − summary 0) on the pair's differences in the gold reward's
    coverage and hallucination terms (− 1 per made-up fact) and in the number of words, with an
    intercept. `rewards` maps a name to rewards (2, pairs), rows summary 0 and summary 1, the order
    of `lib.rm.scoring.Scorer.scores`. Rewards of different scales compare by `hallucination / coverage`:
    near 0 for a reward that never checks a fact against the post. Gold is its two terms with
    weight 1 each plus its repetition, length and fluency terms, which go with the facts, so its
    own fitted ratio is not 1 (0.5–0.7 on the default profile's pairs): read a reward against
    gold's row. NaN where the pairs never differ in coverage."""
    posts = [W.parse_post(p) for p in pairs["post"]]
    terms = [np.array([[W.gold_breakdown(post, s)[k] for k in ("coverage", "hallucination")]
                       + [W.n_words(s)] for post, s in zip(posts, pairs[col])])
             for col in ("summary_0", "summary_1")]
    x = np.c_[terms[1] - terms[0], np.ones(len(posts))]
    rows = {}
    for name, r in rewards.items():
        r = np.asarray(r, dtype=float)
        if r.shape != (2, len(posts)):
            raise ValueError(f"term_weights: the rewards of {name!r} are shaped {r.shape}, expected "
                             f"(2, {len(posts)}): summary 0 and summary 1 of each pair")
        w = np.linalg.lstsq(x, r[1] - r[0], rcond=None)[0]
        rows[name] = {"coverage": w[0], "hallucination": w[1], "per word": w[2],
                      "hallucination / coverage": w[1] / w[0] if w[0] else np.nan}
    return pd.DataFrame(rows).T


def interpolation_curves(rms, pairs: dict[str, list[tuple[dict, dict]]], eval_set,
                         lambdas: Sequence[float], against: str = "label") -> dict[str, dict[str, np.ndarray]]:
    """For each named pair of models (one (θ1, θ2) per seed): per-pair correctness along λ of WA,
    ENS and the diagonal on `eval_set` (against the labels, or as `lib.rm.scoring.correct` says),
    each shaped (seeds, pairs of the eval set, λ)."""
    out = {}
    for name, by_seed in pairs.items():
        curves = [rms.scorer.interpolation(a, b, eval_set, lambdas, against) for a, b in by_seed]
        out[name] = {k: np.stack([c[k].T for c in curves]) for k in ("WA", "ENS", "diag")}
    return out


def disjoint_pairs(n: int) -> list[tuple[int, int]]:
    """(0, 1), (2, 3), …: pairs of models that share no member, so their WA − ENS differences are
    independent draws (and cost n/2 averaged models instead of C(n, 2))."""
    return [(i, i + 1) for i in range(0, n - 1, 2)]


def wa_minus_ens(rms, states: Sequence[dict], eval_sets: dict,
                 pairs: Sequence[tuple[int, int]] | None = None) -> dict[str, np.ndarray]:
    """For each pair of models (WARM Fig. 5; every pair unless `pairs` says which): per-pair
    correctness of their uniform weight average minus that of the average of their rewards, on
    each eval set: (model pairs, eval pairs)."""
    pairs = list(combinations(range(len(states)), 2)) if pairs is None else pairs
    out: dict[str, list] = {name: [] for name in eval_sets}
    for i, j in pairs:
        wa = weight_average([states[i], states[j]])
        for name, es in eval_sets.items():
            ens = (rms.scorer.scores(states[i], es) + rms.scorer.scores(states[j], es)) / 2
            out[name].append(correct(rms.scorer.scores(wa, es), es) - correct(ens, es))
    return {name: np.stack(v) for name, v in out.items()}


def warm_by_m(rms, states: Sequence[dict], eval_set, ens: bool = False, against: str = "label") -> np.ndarray:
    """Per-pair correctness of WARM of the first m models (or, with `ens`, of the mean of their
    rewards), m = 1 … M, on `eval_set` (`against` as `lib.rm.scoring.correct` says): (eval pairs, M)
    (WARM Fig. 10)."""
    cols = []
    for m in range(1, len(states) + 1):
        if ens:
            scores = np.mean([rms.scorer.scores(s, eval_set) for s in states[:m]], axis=0)
        else:
            scores = rms.scorer.scores(states[0] if m == 1 else weight_average(list(states[:m])), eval_set)
        cols.append(correct(scores, eval_set, against))
    return np.stack(cols, axis=1)


def equal_kl_columns(front: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per-prompt columns for `gap_at_equal_kl`: a front's and another curve's points, each
    (prompts, points, 2) with (gold, KL) last, as [front gold, front KL, other gold, other KL]."""
    return np.concatenate([front[..., 0], front[..., 1], other[..., 0], other[..., 1]], axis=1)


def gap_at_equal_kl(n_front: int):
    """The statistic (for `lib.measure.stats.bootstrap`, on means of `equal_kl_columns`) that compares two
    curves at equal KL: the front's gold reward, linearly interpolated at the KL of each point of
    the other curve that lies within the front's KL range, minus that point's gold, averaged over
    those points; NaN where no point lies within the range."""
    def reduce(means):
        m = np.asarray(means)
        flat = m.reshape(-1, m.shape[-1])
        out = []
        for row in flat:
            front_gold, front_kl = row[:n_front], row[n_front:2 * n_front]
            other_gold, other_kl = np.split(row[2 * n_front:], 2)
            order = np.argsort(front_kl)
            gap = np.interp(other_kl, front_kl[order], front_gold[order], left=np.nan, right=np.nan) - other_gold
            out.append(np.nanmean(gap) if np.isfinite(gap).any() else np.nan)
        return np.asarray(out).reshape(m.shape[:-1])
    return reduce


# ---- RL curves ------------------------------------------------------------------------------------

def per_prompt(history: dict, n_prompts: int, key: str = "eval_gold_all") -> np.ndarray:
    """An RL run's eval values (`key` of its history) averaged over each prompt's samples:
    (prompts, eval steps)."""
    return np.stack([np.asarray(v, float).reshape(n_prompts, -1).mean(1) for v in history[key]], axis=1)


def hacking(gold: np.ndarray, proxy: Sequence[float], seeded: bool = False) -> dict:
    """Reward hacking along one RL run (WARM Fig. 1b), from per-prompt gold (prompts, eval steps),
    or (seeds, prompts, eval steps) with `seeded` for runs of several pools on shared prompts, and
    the proxy's mean at each eval step:
    - `peak`: the eval step (index, after step 0) where the mean gold peaks;
    - `drop`: final gold − gold at each eval step after step 0, per prompt; its smallest column
      mean is final − peak;
    - `fall`: that final − peak with the interval of `lib.measure.stats.extreme_bootstrap(drop,
      "min")`, which accounts for choosing the peak;
    - `proxy_rise`: the proxy's mean at the end minus at the peak;
    - `hacked`: the run is hacked when `fall`'s interval lies below 0 while the proxy rose (never
      with a single eval step after step 0, which is its own peak)."""
    gold, proxy = np.asarray(gold, float), np.asarray(proxy, float)
    if gold.ndim != (3 if seeded else 2) or gold.shape[-1] < 2:
        raise ValueError(f"hacking needs gold per {'seed, ' if seeded else ''}prompt at step 0 and at least one "
                         f"later eval step, got {gold.shape}")
    if proxy.shape != gold.shape[-1:]:
        raise ValueError(f"one proxy value per eval step: {len(proxy)} for {gold.shape[-1]} steps")
    curve = gold.reshape(-1, gold.shape[-1]).mean(0)
    peak = 1 + int(np.argmax(curve[1:]))
    drop = gold[..., -1:] - gold[..., 1:]
    fall = extreme_bootstrap(drop, "min", seeded=seeded)
    rise = float(proxy[-1] - proxy[peak])
    return {"peak": peak, "drop": drop, "fall": fall, "proxy_rise": rise, "hacked": bool(fall.ci[1] < 0 and rise > 0)}


def nearest_kl_step(kl: Sequence[float], target: float) -> int:
    """The index of the eval step whose KL to SFT is nearest `target`: where a trajectory is met
    at a policy's own KL (WARP compares policies at matched KL, its Fig. 1b, 4)."""
    kl = np.asarray(kl, float)
    if kl.ndim != 1 or not len(kl) or not np.isfinite(kl).all() or not np.isfinite(target):
        raise ValueError("nearest_kl_step needs a finite KL per eval step and a finite target")
    return int(np.argmin(np.abs(kl - target)))


def error_overlap(correct: np.ndarray) -> dict[str, float]:
    """How much the errors of M models overlap, from their per-pair correctness (models, pairs):
    the mean error rate, the fraction of pairs every model gets wrong next to what independent
    errors at the same rates would give, and how often another model is wrong where one is."""
    c = np.asarray(correct, dtype=float)
    if c.ndim != 2 or c.shape[0] < 2:
        raise ValueError(f"error_overlap needs per-pair correctness of ≥ 2 models, shaped (models, pairs); "
                         f"got {c.shape}")
    wrong = 1.0 - c
    rates = wrong.mean(1)
    both = [(wrong[i] * wrong[j]).sum() / wrong[i].sum() for i in range(len(c)) for j in range(len(c))
            if i != j and wrong[i].sum() > 0]
    return {"error rate": float(rates.mean()), "all wrong": float(wrong.prod(0).mean()),
            "all wrong if independent": float(np.prod(rates)),
            "another wrong where one is": float(np.mean(both)) if both else np.nan}


def _off_diagonal_mean(corr: np.ndarray) -> float:
    return float(corr[~np.eye(len(corr), dtype=bool)].mean())


def margin_correlation(scores: Sequence[np.ndarray]) -> float:
    """Mean pairwise Pearson correlation of the models' margins r(summary_1) − r(summary_0) on one
    set of pairs; `scores` holds each model's rewards (2, pairs)."""
    margins = np.stack([np.asarray(s)[1] - np.asarray(s)[0] for s in scores])
    if len(margins) < 2:
        raise ValueError("margin_correlation needs ≥ 2 models")
    return _off_diagonal_mean(np.corrcoef(margins))


def residual_correlation(scores: Sequence[np.ndarray], gold: np.ndarray) -> float:
    """Mean pairwise correlation, across models, of the part of each model's score that gold does
    not explain, on a sample pool (prompts, K): the within-prompt z-score of the reward minus its
    least-squares fit on the within-prompt z-score of gold. Near 1: the models share their errors,
    and averaging them removes little; near 0: each errs on its own."""
    def z(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        sd = x.std(1, keepdims=True)
        return np.divide(x - x.mean(1, keepdims=True), sd, out=np.zeros_like(x), where=sd > 0).ravel()

    if len(scores) < 2:
        raise ValueError("residual_correlation needs ≥ 2 models")
    g = z(gold)
    residuals = np.stack([zs - (zs @ g) / (g @ g) * g for zs in (z(s) for s in scores)])
    return _off_diagonal_mean(np.corrcoef(residuals))


def weight_geometry(states: Sequence[dict], inits: Sequence[dict]) -> dict[str, np.ndarray]:
    """Each fine-tuned model's distance from its init relative to the init's norm, ‖θ − θ0‖/‖θ0‖,
    and the cosines between the models' task vectors θ − θ0 (models, models), over every floating
    tensor the states share."""
    deltas = [task_vector(s, i) for s, i in zip(states, inits)]
    distance = np.array([global_norm(d) / global_norm(i) for d, i in zip(deltas, inits)])
    keys = [k for k in deltas[0] if deltas[0][k].is_floating_point()]
    flat = torch.stack([torch.cat([d[k].double().ravel() for k in keys]) for d in deltas])
    flat = flat / flat.norm(dim=1, keepdim=True)
    return {"distance": distance, "cosine": (flat @ flat.T).numpy()}


def member_diagnostics(rms, members: Sequence, eval_set, sample_pool: dict) -> dict[str, float]:
    """Why averaging a pool's members helps or not (notebook 02's diagnostic table): how much their
    errors overlap on `eval_set` against the annotators' Bayes choice (the errors any model could
    avoid), the correlation of their margins there and of their residuals on `sample_pool`
    (`residual_correlation`), and how far their weights moved from their inits, and in which
    directions (`weight_geometry`)."""
    states = [rms.state(cfg) for cfg in members]
    scores = [rms.scorer.scores(s, eval_set) for s in states]
    overlap = error_overlap(np.stack([correct(s, eval_set, "bayes") for s in scores]))
    k = len(sample_pool["samples"][0])
    prompts = [p for p in D.prompts_of(sample_pool["posts"]) for _ in range(k)]
    flat = [s for row in sample_pool["samples"] for s in row]
    on_pool = [rms.scorer.score_texts(s, prompts, flat).reshape(-1, k) for s in states]
    geometry = weight_geometry(states, [rms.initial_state(cfg) for cfg in members])
    cosine = geometry["cosine"][~np.eye(len(states), dtype=bool)]
    return {"error rate vs Bayes": overlap["error rate"], "all wrong vs Bayes": overlap["all wrong"],
            "all wrong if independent": overlap["all wrong if independent"],
            "another wrong where one is": overlap["another wrong where one is"],
            "margin correlation": margin_correlation(scores),
            "residual correlation (SFT samples)": residual_correlation(on_pool, sample_pool["gold"]),
            "distance from init": float(geometry["distance"].mean()),
            "task-vector cosine": float(cosine.mean())}
