"""Scoring reward models with any weights: a pool member, its weight average, an interpolation.

`Scorer` turns a full RM state dict into rewards on evaluation pairs or on free texts, memoized on
the exact weights, so a model reached twice (a shared endpoint, one average built in two places)
is scored once. `correct` turns rewards into per-pair correctness, the unit of every interval in
`lib.measure.stats`. The cached stages that train and score the pool's members are
`lib.rm.pool.RewardModels`; it hands its `Scorer` the members' cached scores.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lib.cache import state_fingerprint
from lib.measure.evaluate import choice_correct, expected_correct
from lib.merge import weight_average
from lib.rm.pairs import EvalSet, RMPairs
from lib.rm.rm import reward_model_from, score_texts, sequence_scores

AGAINST = ("label", "expected", "bayes")  # what `correct` scores a ranking against
StateDict = dict[str, torch.Tensor]


def correct(scores: np.ndarray, labels: EvalSet | np.ndarray, against: str = "label") -> np.ndarray:
    """Per pair: 1 if rewards (2, n) rank the labelled summary first (ties count, as WARM).
    `against` an EvalSet with annotator probabilities may instead be "expected" (the probability
    that a fresh label agrees: `lib.measure.evaluate.expected_correct`) or "bayes" (the annotators'
    most likely choice, the errors no model could avoid removed)."""
    if against not in AGAINST:
        raise ValueError(f"unknown accuracy target {against!r}; valid: {', '.join(AGAINST)}")
    if against == "label":
        labels = labels.labels if isinstance(labels, EvalSet) else labels
        return choice_correct(scores[0], scores[1], labels)
    p = labels.p_label if isinstance(labels, EvalSet) else None
    if p is None:
        raise ValueError(f"accuracy against {against!r} needs the annotators' probabilities: an EvalSet of "
                         "the synthetic world's held-out pairs")
    if against == "expected":
        return expected_correct(scores[0], scores[1], p[labels.rows])
    return choice_correct(scores[0], scores[1], (p[labels.rows] > 0.5).astype(int))


class Scorer:
    """Rewards of RMs given by their full weights: the SFT model's architecture with a scalar head.

    `cached(fingerprint, pairset)` returns a pool member's cached rewards on a pair set when the
    weights with that fingerprint are a member's final ones (else None), so members are never
    rescored."""

    def __init__(self, sft_path: Path, tokenizer: PreTrainedTokenizerBase, pairs: RMPairs, *,
                 device: str, max_length: int,
                 cached: Callable[[str, str], np.ndarray | None] = lambda fingerprint, pairset: None):
        self.sft_path, self.tokenizer, self.pairs = sft_path, tokenizer, pairs
        self.device, self.max_length, self.cached = device, max_length, cached
        self._scores: dict = {}
        self._template: PreTrainedModel | None = None

    def model_of(self, state: StateDict, copy_: bool = True) -> PreTrainedModel:
        """An RM carrying the (e.g. weight-averaged) full state dict `state`. With `copy_=False`
        the one shared template is reloaded in place (fast, for scoring one model at a time)."""
        if self._template is None:
            self._template = reward_model_from(self.sft_path, None).to(self.device).eval()
        missing, unexpected = self._template.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            raise ValueError(f"state dict does not fit the RM: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
        return copy.deepcopy(self._template) if copy_ else self._template

    def score_texts(self, state: StateDict, prompts: Sequence[str], summaries: Sequence[str]) -> np.ndarray:
        """Reward of each (prompt, summary) under the RM with weights `state`."""
        return score_texts(self.model_of(state, copy_=False), self.tokenizer, prompts, summaries,
                           self.max_length)

    def scores(self, state: StateDict, eval_set: EvalSet) -> np.ndarray:
        """Rewards (2, n) of the RM with weights `state` on the pairs of `eval_set`. Each scored
        pair set is scored once per model, memoized on the exact weights: subsets of one pair set
        and a model reached twice are free; a pool member's final weights read back its cached
        scores."""
        fingerprint = state_fingerprint(state)
        key = (fingerprint, eval_set.pairset)
        pairs = self.pairs.pairset(eval_set.pairset)
        if key not in self._scores:
            member = self.cached(fingerprint, eval_set.pairset)
            self._scores[key] = member if member is not None else \
                sequence_scores(self.model_of(state, copy_=False), pairs)
        return self._scores[key][pairs.seq[eval_set.rows]].T.copy()

    def interpolation(self, theta_1: StateDict, theta_2: StateDict, eval_set: EvalSet,
                      lambdas: Sequence[float], against: str = "label") -> dict[str, np.ndarray]:
        """Per-pair correctness along λ (WARM Fig. 3, 4), each shaped (len(lambdas), pairs): of WA
        (weights (1−λ)θ1 + λθ2), of ENS (rewards (1−λ)r1 + λr2), and the diagonal (1−λ)c1 + λc2
        (its mean is the diagonal accuracy), `against` the labels or as `correct` says. Endpoints
        are scored once."""
        s1, s2 = self.scores(theta_1, eval_set), self.scores(theta_2, eval_set)
        c1, c2 = correct(s1, eval_set, against), correct(s2, eval_set, against)
        out: dict[str, list] = {"WA": [], "ENS": [], "diag": []}
        for lam in lambdas:
            wa = s1 if lam == 0.0 else s2 if lam == 1.0 else \
                self.scores(weight_average([theta_1, theta_2], [1 - lam, lam]), eval_set)
            out["WA"].append(correct(wa, eval_set, against))
            out["ENS"].append(correct((1 - lam) * s1 + lam * s2, eval_set, against))
            out["diag"].append((1 - lam) * c1 + lam * c2)
        return {"lambda": np.asarray(lambdas, float), **{k: np.asarray(v, float) for k, v in out.items()}}
