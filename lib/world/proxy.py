"""A simple proxy reward: logistic regression (Bradley–Terry) on bag-of-words and length features.

Notebook 00 uses it to check the world before anything builds on it: optimizing this proxy with
best-of-N must over-optimize (proxy up, gold flat or down), and its accuracy must drop OOD.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lib.measure.evaluate import choice_accuracy, choice_correct, fit_bradley_terry
from lib.world.world import normalize


@dataclass
class BagOfWordsProxy:
    """r(x, y) = w·φ(x, y), φ = [word counts of y, #words of y, #words of y found / not found in x]."""

    vocab: dict[str, int]
    weights: np.ndarray

    @staticmethod
    def features(vocab: dict[str, int], posts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        phi = np.zeros((len(summaries), len(vocab) + 3), dtype=np.float64)
        for row, (post, summary) in enumerate(zip(posts, summaries)):
            words = [w for w in normalize(summary).split() if w not in ".?,;!"]
            post_words = set(normalize(post).split())
            for w in words:
                if w in vocab:
                    phi[row, vocab[w]] += 1
            in_post = sum(w in post_words for w in words)
            phi[row, -3:] = (len(words), in_post, len(words) - in_post)
        return phi

    @classmethod
    def fit(cls, posts: Sequence[str], summary_0: Sequence[str], summary_1: Sequence[str],
            choice: Sequence[int], l2: float = 1e-3, min_count: int = 2) -> BagOfWordsProxy:
        """Maximum-likelihood Bradley–Terry fit with L2 (`lib.measure.evaluate.fit_bradley_terry`)."""
        counts = Counter(w for s in list(summary_0) + list(summary_1) for w in normalize(s).split())
        vocab = {w: i for i, w in enumerate(sorted(w for w, c in counts.items()
                                                   if c >= min_count and w not in ".?,;!"))}
        sign = np.where(np.asarray(choice) == 1, 1.0, -1.0)[:, None]  # orient chosen − rejected
        diff = sign * (cls.features(vocab, posts, summary_1) - cls.features(vocab, posts, summary_0))
        return cls(vocab, fit_bradley_terry(torch.tensor(diff), l2).numpy())

    @classmethod
    def fit_pairs(cls, ds, l2: float = 1e-3) -> BagOfWordsProxy:
        """`fit` on a dataset of comparison pairs (the pair schema of `lib.world.data`)."""
        return cls.fit(ds["post"], ds["summary_0"], ds["summary_1"], ds["choice"], l2=l2)

    def pair_scores(self, ds) -> np.ndarray:
        """Rewards (2, pairs) of a comparison dataset: row 0 for summary_0, row 1 for summary_1."""
        return np.stack([self.score(ds["post"], ds[col]) for col in ("summary_0", "summary_1")])

    def correct(self, ds) -> np.ndarray:
        """Per pair of a comparison dataset: 1 if the proxy ranks the labelled summary first."""
        return choice_correct(*self.pair_scores(ds), ds["choice"])

    def score(self, posts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        return self.features(self.vocab, posts, summaries) @ self.weights

    def accuracy(self, posts: Sequence[str], summary_0: Sequence[str], summary_1: Sequence[str],
                 choice: Sequence[int]) -> float:
        """Pairwise accuracy against `choice` (ties count as correct)."""
        return choice_accuracy(self.score(posts, summary_0), self.score(posts, summary_1), choice)
