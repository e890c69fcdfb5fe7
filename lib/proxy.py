"""A simple proxy reward: logistic regression (Bradley–Terry) on bag-of-words and length features.

Notebook 00 uses it to check the world before anything builds on it: optimizing this proxy with
best-of-N must over-optimize (proxy up, gold flat or down), and its accuracy must drop OOD.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .world import normalize


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
            choice: Sequence[int], l2: float = 1e-3, min_count: int = 2) -> "BagOfWordsProxy":
        """Maximum-likelihood Bradley–Terry fit with L2, by L-BFGS (deterministic)."""
        counts = Counter(w for s in list(summary_0) + list(summary_1) for w in normalize(s).split())
        vocab = {w: i for i, w in enumerate(sorted(w for w, c in counts.items()
                                                   if c >= min_count and w not in ".?,;!"))}
        diff = torch.tensor(cls.features(vocab, posts, summary_1)
                            - cls.features(vocab, posts, summary_0))
        y = torch.tensor(np.asarray(choice), dtype=torch.float64)
        w = torch.zeros(diff.shape[1], dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(diff @ w, y) + l2 * w.square().sum()
            loss.backward()
            return loss

        opt.step(closure)
        return cls(vocab, w.detach().numpy())

    def score(self, posts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        return self.features(self.vocab, posts, summaries) @ self.weights

    def accuracy(self, posts: Sequence[str], summary_0: Sequence[str], summary_1: Sequence[str],
                 choice: Sequence[int]) -> float:
        """Pairwise accuracy against `choice` (ties count as correct)."""
        r0, r1 = self.score(posts, summary_0), self.score(posts, summary_1)
        c = np.asarray(choice)
        chosen, rejected = np.where(c == 1, r1, r0), np.where(c == 1, r0, r1)
        return float(np.mean(chosen >= rejected))
