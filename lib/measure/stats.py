"""Intervals and verdicts: how sure each claim is.

Every statistic here is a function of *means over evaluation items* (the accuracy of an RM is the
mean of per-pair correctness; best-of-N gold is a mean over prompts; a win rate too). A bootstrap
resamples the items, recomputes those means, and reads the 2.5% and 97.5% percentiles of the
statistic (a percentile interval, Efron & Tibshirani 1993).

- Items that belong together are resampled together (`clusters`): the pairs of one prompt share
  its summaries, so the prompt is the unit (a cluster bootstrap).
- Two models compared on the same items are compared *paired*: every replicate resamples the same
  items for both, so what they agree on cancels (the statistic is a function of both means).
- Seeds: with independently seeded repeats (RM pools, RL runs), the nested bootstrap resamples the
  seeds with replacement and, within a replicate, the items (the same items for every seed when
  the seeds share an evaluation set; each seed's own items when they do not, e.g. the training
  pairs of pools trained on disjoint data), and averages the statistic over the drawn seeds. The interval
  then covers the spread across seeds as well as within them. With 3 seeds it is coarse: it is
  roughly the range of the per-seed values, widened by their item noise.

Everything is vectorised numpy with a seeded generator: the same inputs give the same interval, bit
for bit. A verdict is three-way: "holds" iff the whole interval lies on the claimed side of the
threshold, "fails" iff it lies wholly on the other side, "inconclusive" otherwise (an interval that
touches the threshold decides nothing).

An extreme of many means (the deepest fall of 36 RMs at 8 eval steps, the least accurate of 18
RMs, the peak of a best-of-N curve) has its own interval (`extreme_bootstrap`, over seeds too): the
percentile bootstrap of a maximum is biased and promises no coverage.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

N_BOOT = 2000
CI_KINDS = ("bootstrap", "seeds", "nested", "extreme")
DIRECTIONS = (">", "<")
VERDICTS = ("holds", "fails", "inconclusive")
Reduce = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval: `kind` says what was resampled, `n` counts the
    evaluation items and `seeds` the independent repeats behind it."""

    value: float
    ci: tuple[float, float]
    kind: str
    n: int
    seeds: int = 1

    def __post_init__(self):
        if self.kind not in CI_KINDS:
            raise ValueError(f"unknown interval kind {self.kind!r}; valid: {', '.join(CI_KINDS)}")

    def __format__(self, spec: str) -> str:
        spec = spec or ".3f"
        return f"{fmt(self.value, spec)} [{fmt(self.ci[0], spec)}, {fmt(self.ci[1], spec)}]"


def fmt(x: float, spec: str = ".4g") -> str:
    """`x` formatted with `spec`, a zero never signed (-0.0, or a tiny negative rounded to 0)."""
    text = f"{x:{spec}}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def verdict(ci: tuple[float, float], threshold: float, direction: str) -> str:
    """'holds' iff the whole interval lies strictly on the `direction` side of `threshold`,
    'fails' iff it lies strictly on the other side, else 'inconclusive'."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    low, high = float(ci[0]), float(ci[1])
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise ValueError(f"an interval needs finite low ≤ high, got [{low}, {high}]")
    above, below = low > threshold, high < threshold
    if direction == ">":
        return "holds" if above else "fails" if below else "inconclusive"
    return "holds" if below else "fails" if above else "inconclusive"


def _as_items(values: np.ndarray, clusters) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums (clusters, stats) and item counts (clusters,) of item values (items, stats)."""
    if clusters is None:
        return values, np.ones(len(values))
    clusters = np.asarray(clusters)
    if clusters.shape != (len(values),):
        raise ValueError(f"one cluster id per item expected: {clusters.shape} for {len(values)} items")
    _, inverse = np.unique(clusters, return_inverse=True)
    sums = np.zeros((inverse.max() + 1, values.shape[1]))
    np.add.at(sums, inverse, values)
    return sums, np.bincount(inverse).astype(float)


class PerSeed(list):
    """Item values of seeded repeats that each have their own evaluation items (e.g. the training
    pairs of pools trained on disjoint data): one array (items_s[, stats]) per seed, for
    `nested_bootstrap`, which then resamples each seed's items on their own."""


def _samples(values, clusters, seeded: bool) -> tuple[dict, dict, dict, bool]:
    """Named samples of item values as lists of float arrays (items, stats), one per seed, with
    their clusters (one per seed) and whether the seeds share their items. One array is the
    sample "" (and `reduce` then gets its means directly)."""
    single = not isinstance(values, dict)
    values = {"": values} if single else dict(values)
    clusters = {k: clusters for k in values} if single or not isinstance(clusters, dict) \
        else {k: clusters.get(k) for k in values}
    out, shared = {}, {}
    for name, v in values.items():
        where = f" in {name!r}" if name else ""
        shared[name] = not isinstance(v, PerSeed)
        if not (shared[name] or seeded):
            raise ValueError(f"per-seed items{where} need nested_bootstrap")
        arrays = [np.asarray(x, dtype=float) for x in v] if not shared[name] else \
            list(np.asarray(v, dtype=float)[None] if not seeded else np.asarray(v, dtype=float))
        if not arrays:
            raise ValueError(f"an interval needs at least one seed{where}")
        arrays = [a[:, None] if a.ndim == 1 else a for a in arrays]
        if any(a.ndim != 2 for a in arrays):
            shape = "(seeds, items[, stats]) or PerSeed of (items[, stats])" if seeded else "(items[, stats])"
            got = np.shape(v) if shared[name] else [np.shape(x) for x in v]
            raise ValueError(f"item values {name!r} must be {shape}, got shape {got}")
        if any(a.shape[0] == 0 for a in arrays):
            raise ValueError(f"an interval needs at least one evaluation item{where}")
        if not all(np.all(np.isfinite(a)) for a in arrays):
            raise ValueError(f"item values{f' {name!r}' if name else ''} must be finite")
        c = clusters[name]
        if shared[name]:
            clusters[name] = [c] * len(arrays)
        else:
            clusters[name] = [None] * len(arrays) if c is None else list(c)
            if len(clusters[name]) != len(arrays):
                raise ValueError(f"one cluster array per seed expected{where}: {len(clusters[name])} "
                                 f"for {len(arrays)} seeds")
        out[name] = arrays
    if len({len(v) for v in out.values()}) != 1:
        raise ValueError("every sample needs the same number of seeds")
    return out, clusters, shared, single


def _weights(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """Bootstrap multiplicities (n_boot, n): how often each unit is drawn in each replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def _interval(replicates: np.ndarray, value: float) -> tuple[float, float]:
    """The 2.5% and 97.5% percentiles of the replicates, widened to contain the point estimate
    (a nonlinear statistic such as a minimum can put it just outside). Replicates where the
    statistic is undefined (NaN: e.g. two curves that no longer overlap) are left out."""
    replicates = np.asarray(replicates, dtype=float)
    if not np.isfinite(value) or not np.isfinite(replicates).any():
        raise ValueError("the statistic is undefined on these data (no finite value)")
    low, high = np.nanpercentile(np.where(np.isfinite(replicates), replicates, np.nan), [2.5, 97.5])
    return min(float(low), value), max(float(high), value)


def _resample(values, reduce, clusters, n_boot: int, seed: int, seeded: bool):
    samples, clusters, shared, single = _samples(values, clusters, seeded)
    rng = np.random.default_rng(seed)
    n_seeds = len(next(iter(samples.values())))
    full, boot, n_items = {}, {}, 0
    for name, arrays in samples.items():
        parts = [_as_items(v, c) for v, c in zip(arrays, clusters[name])]
        full[name] = np.stack([sums.sum(0) / counts.sum() for sums, counts in parts])  # (seeds, stats)
        if shared[name]:
            sums, counts = np.stack([p[0] for p in parts]), parts[0][1]  # (seeds, clusters, stats)
            w = _weights(rng, len(counts), n_boot)  # one draw of the items for every seed
            boot[name] = np.einsum("bc,sck->bsk", w, sums) / (w @ counts)[:, None, None]
            n_items += arrays[0].shape[0]
        else:  # each seed's own items, drawn on their own
            draws = [(_weights(rng, len(counts), n_boot), sums, counts) for sums, counts in parts]
            boot[name] = np.stack([w @ sums / (w @ counts)[:, None] for w, sums, counts in draws], 1)
            n_items += sum(a.shape[0] for a in arrays)
    reduce = reduce or (lambda m: m[..., 0])
    apply = (lambda m: reduce(m[""])) if single else reduce
    return apply(full), apply(boot), n_seeds, n_items, rng


def _draw_seeds(rng: np.random.Generator, boot: np.ndarray) -> np.ndarray:
    """Replicates (n_boot, seeds[, …]) of each seed's statistic → (n_boot[, …]): each replicate
    draws the seeds with replacement and averages the statistic over the drawn ones."""
    n_boot, n_seeds = boot.shape[:2]
    chosen = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    return np.take_along_axis(boot, chosen.reshape(chosen.shape + (1,) * (boot.ndim - 2)), axis=1).mean(1)


def bootstrap(values, reduce: Reduce | None = None, clusters=None, n_boot: int = N_BOOT,
              seed: int = 0) -> Estimate:
    """The 95% percentile interval of a statistic of means over evaluation items.

    `values`: per-item values (items,) or (items, stats), one column per mean the statistic needs
    (e.g. the correctness of WA and of ENS on the same pairs: paired); or a dict of such arrays
    for samples of *different* items, each resampled on its own. `clusters`: the cluster of each
    item (a dict for a dict of samples), resampled whole. `reduce` maps the means (..., stats), or
    the dict of them, to the statistic (...); the default is the mean of a single column."""
    full, boot, _, n_items, _ = _resample(values, reduce, clusters, n_boot, seed, seeded=False)
    value = float(np.asarray(full)[0])
    return Estimate(value, _interval(np.asarray(boot)[:, 0], value), "bootstrap", n_items)


def nested_bootstrap(values, reduce: Reduce | None = None, clusters=None, n_boot: int = N_BOOT,
                     seed: int = 0) -> Estimate:
    """Like `bootstrap`, over independently seeded repeats. Seeds that share their evaluation
    items give an array (seeds, items) or (seeds, items, stats), and `clusters` one array for all;
    seeds with their own items give a `PerSeed` list of arrays (items_s[, stats]), and `clusters` a
    list of per-seed arrays. Each replicate draws the seeds with replacement and the items
    (clusters): shared items once for all seeds, a seed's own items on their own; it averages the
    statistic over the drawn seeds. The point estimate is the mean over seeds of the statistic,
    and `n` counts the distinct items."""
    full, boot, n_seeds, n_items, rng = _resample(values, reduce, clusters, n_boot, seed, seeded=True)
    replicates = _draw_seeds(rng, np.asarray(boot))
    value = float(np.mean(full))
    return Estimate(value, _interval(replicates, value), "nested", n_items, n_seeds)


def extreme_bootstrap(values, kind: str = "max", clusters=None, n_boot: int = N_BOOT,
                      seed: int = 0, seeded: bool = False) -> Estimate:
    """The largest (`kind` "max") or smallest ("min") of many column means, e.g. the deepest fall of
    any RM at any eval step, with a 95% interval that holds for an extreme of noisy means.

    The percentile bootstrap of a maximum is biased upwards (each replicate adds noise to every
    column, and the max picks it up) and carries no coverage guarantee. Here, from one paired
    cluster bootstrap of every column's mean, for "max":
    - the upper end is the largest per-column 97.5% percentile: it lies above the true maximum
      whenever the bound of the column that holds it does (an intersection–union bound, so no
      correction for the number of columns);
    - the lower end is the largest per-column lower bound that holds for every column at once
      (max-t: each column's mean minus the 97.5% quantile of the largest standardized deviation
      over the columns, times its standard error): it lies below the true maximum whenever all of
      them hold.
    Together they cover the true maximum at least 95% of the time. A claim "the max is below c"
    then holds iff every column's own bound is below c. "min" is the mirror image.
    `values`: per-item values (items, columns), `clusters` as for `bootstrap`; with `seeded`,
    (seeds, items, columns) on shared items, resampled as `nested_bootstrap` does: the columns
    are then means over the seeds too (e.g. best-of-N gold at each N, averaged over the pools),
    and the interval covers the spread across seeds."""
    if kind not in ("max", "min"):
        raise ValueError(f"kind must be 'max' or 'min', got {kind!r}")
    sign = 1.0 if kind == "max" else -1.0
    means, reps, n_items, n_seeds = _column_replicates(sign * np.asarray(values, dtype=float), clusters,
                                                       n_boot, seed, seeded)
    se = reps.std(axis=0)
    upper = np.percentile(reps, 97.5, axis=0).max()
    spread = np.divide(reps - means, se, out=np.zeros_like(reps), where=se > 0).max(axis=1)
    lower = (means - np.percentile(spread, 97.5) * se).max()
    value = float(means.max())
    low, high = min(float(lower), value), max(float(upper), value)
    low, high = (low, high) if sign > 0 else (-high, -low)
    return Estimate(sign * value + 0.0, (low + 0.0, high + 0.0), "extreme", n_items, n_seeds)  # + 0.0: no −0


def column_bounds(values, clusters=None, n_boot: int = N_BOOT, seed: int = 0,
                  seeded: bool = False) -> tuple[np.ndarray, ...]:
    """Per column of `values` (as for `extreme_bootstrap`): its mean and the 2.5% and 97.5%
    percentiles of the bootstrap that `extreme_bootstrap` draws (same seed, same replicates):
    which columns decide an extreme's verdict, and which leave it open."""
    means, reps, _, _ = _column_replicates(np.asarray(values, dtype=float), clusters, n_boot, seed, seeded)
    low, high = np.percentile(reps, [2.5, 97.5], axis=0)
    return means, low, high


def _column_replicates(values: np.ndarray, clusters, n_boot: int, seed: int, seeded: bool):
    """Column means (columns,), their paired (and, with seeds, nested) bootstrap replicates
    (n_boot, columns), the item count and the seed count."""
    shape = "(seeds, items, columns)" if seeded else "(items, columns)"
    if values.ndim != 2 + seeded or values.shape[-1] < 1:
        raise ValueError(f"item values must be {shape}, got shape {values.shape}")
    full, boot, n_seeds, n_items, rng = _resample(values, lambda m: m, clusters, n_boot, seed, seeded)
    full, boot = np.asarray(full), np.asarray(boot)  # (seeds, columns), (n_boot, seeds, columns)
    return full.mean(0), _draw_seeds(rng, boot) if seeded else boot[:, 0], n_items, n_seeds


def seeds_interval(per_seed, n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """An interval across independent repeats alone (no evaluation items behind each value):
    the percentile bootstrap of the mean over seeds."""
    x = np.asarray(per_seed, dtype=float).ravel()
    if x.size == 0 or not np.all(np.isfinite(x)):
        raise ValueError("an interval across seeds needs at least one finite value")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    return Estimate(float(x.mean()), _interval(x[idx].mean(1), float(x.mean())), "seeds", len(x), len(x))


def prompts_needed_line(estimate: Estimate, effect: float | None = None, now: int | None = None) -> str:
    """One sentence for a chapter: how many evaluation prompts would decide an inconclusive claim
    (`prompts_needed`), or why no number would."""
    n = prompts_needed(estimate, effect)
    if n is None:
        return "the estimate sits on the threshold, so no number of prompts would decide it"
    return (f"about {n} prompts would make the interval narrower than the estimate's distance from the "
            "threshold" + (f" (now {now})" if now else ""))


def prompts_needed(estimate: Estimate, effect: float | None = None) -> int | None:
    """Items needed for the interval's half-width to fall below |effect| (by default the point
    estimate itself, i.e. its distance from 0), assuming the width shrinks as 1/√n; None for a
    zero effect."""
    effect = abs(estimate.value if effect is None else effect)
    half = (estimate.ci[1] - estimate.ci[0]) / 2
    if effect == 0:
        return None
    return int(math.ceil(estimate.n * (half / effect) ** 2))
