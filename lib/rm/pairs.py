"""The pairs a pool of reward models trains and is evaluated on: each pool's training block, its
tokenized pair sets and the evaluation subsets of WARM Fig. 4.

The data job of the RM layer: which posts a pool reads, with which labels swapped, and which
pairs each accuracy is scored on. It sits in `rm/`, not with the world's data, because a pair
set is tokenized for the RMs (`lib.rm.rm.PairSet`) with the pipeline's tokenizer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datasets import Dataset

from lib.pipeline import Pipeline
from lib.rm.rm import PairSet
from lib.world import data as D


@dataclass(frozen=True)
class EvalSet:
    """Pairs to evaluate on: `rows` of the scored `PairSet` called `pairset`, their labels, the
    prompt of each pair (`clusters`, the unit a bootstrap resamples: pairs of one prompt share
    their summaries) and, for the held-out pairs of the synthetic world, the probability that its
    annotators prefer summary_1 (`p_label`, what each label is one draw of; else None)."""

    name: str
    pairset: str
    rows: np.ndarray
    labels: np.ndarray
    clusters: np.ndarray
    p_label: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.rows)


def half(es: EvalSet, parity: int) -> EvalSet:
    """The pairs of `es` whose prompt has an even (`parity` 0) or odd (1) index."""
    keep = np.flatnonzero(es.clusters % 2 == parity)
    return EvalSet(f"{es.name} ({'odd' if parity else 'even'} prompts)", es.pairset, es.rows[keep],
                   es.labels[keep], es.clusters[keep], es.p_label)


class RMPairs:
    """The training blocks, pair sets and evaluation subsets of a pipeline's RM pools."""

    def __init__(self, pipeline: Pipeline):
        self.pl = pipeline
        self.cfg = pipeline.profile.rm
        self._pairsets: dict[str, PairSet] = {}
        self._p_label: dict[str, np.ndarray] = {}

    def block(self, corruption: float, pool: int) -> int:
        """The block of training posts seeded pool `pool` trains on: its own with corrupt labels
        and `rm.corrupt_posts` set, else 0 (every post)."""
        return pool if corruption and self.cfg.corrupt_posts is not None else 0

    def train_posts(self, corruption: float, block: int = 0) -> tuple[int, int] | None:
        """The training posts [start, stop) of a pool's block (None: all of them): part of every
        key it shapes. Corrupt pool p reads posts [p·n, (p+1)·n), n = `rm.corrupt_posts`; every
        clean pool the first `rm.clean_posts`."""
        n = self.cfg.corrupt_posts if corruption else self.cfg.clean_posts
        return None if n is None else (block * n, (block + 1) * n)

    def train_split(self, corruption: float, block: int = 0) -> str:
        """The name of a pool's training pair set: `train-<corruption>`, with `-b<block>` when the
        pool trains on a block of the posts (`rm.corrupt_posts`, `rm.clean_posts`)."""
        return f"train-{corruption}" + ("" if self.train_posts(corruption, block) is None else f"-b{block}")

    def pool_split(self, corruption: float, pool: int) -> str:
        """The training pair set of seeded pool `pool` (`train_split` of its `block`)."""
        return self.train_split(corruption, self.block(corruption, pool))

    def train_pairs(self, corruption: float, block: int = 0) -> Dataset:
        """The training pairs of a pool: the posts of its block (`train_posts`; every training post
        where that is None), with `corruption` of their labels swapped."""
        ds = self.pl.comparisons["train"]
        span = self.train_posts(corruption, block)
        if span is not None:
            posts = list(dict.fromkeys(ds["post_id"]))
            if span[1] > len(posts):
                key = "rm.corrupt_posts" if corruption else "rm.clean_posts"
                raise ValueError(f"{key} = {span[1] - span[0]}: block {block} needs posts "
                                 f"[{span[0]}, {span[1]}) but the training pairs have only {len(posts)} posts")
            keep = set(posts[span[0]:span[1]])
            ds = ds.select([i for i, p in enumerate(ds["post_id"]) if p in keep])
        return D.with_corrupted_labels(ds, corruption, seed=self.pl.profile.world.seed) if corruption else ds

    def pairset(self, name: str) -> PairSet:
        """Tokenized pairs by name: a training split (`train_split`), `validation`, `test_ood`, or
        `curve` (the first `rm.curve_posts` ID-validation prompts, scored along training)."""
        if name not in self._pairsets:
            if name.startswith("train-"):
                corruption, _, block = name.split("-", 1)[1].partition("-b")
                ds = self.train_pairs(float(corruption), int(block or 0))
            elif name == "curve":
                val = self.pl.comparisons["validation"]
                posts = list(dict.fromkeys(val["post_id"]))[: self.cfg.curve_posts]
                keep = set(posts)
                ds = val.select([i for i, p in enumerate(val["post_id"]) if p in keep])
            else:
                ds = self.pl.comparisons[name]
            self._pairsets[name] = PairSet(self.pl.tokenizer, ds, self.pl.profile.model.max_length)
        return self._pairsets[name]

    def eval_sets(self, corruption: float = 0.0, pool: int = 0) -> dict[str, EvalSet]:
        """WARM Fig. 4's subsets, every pair of each: train-corrupt (the flipped training pairs of
        the pool's block, against their flipped labels: memorization), train-clean, ID validation,
        OOD (the last two shared by every pool)."""
        split = self.pool_split(corruption, pool)
        train = self.pairset(split)
        flipped = train.flipped if train.flipped is not None else np.zeros(train.n, bool)
        out = {}
        if corruption:
            out["train-corrupt"] = np.flatnonzero(flipped)
        out["train-clean"] = np.flatnonzero(~flipped)
        sets = {name: EvalSet(name, split, rows, train.choice[rows], train.group[rows])
                for name, rows in out.items()}
        for name, split in (("ID val", "validation"), ("OOD", "test_ood")):
            sets[name] = self.held_out(name, split)
        if self.cfg.rank_on == "ood-half":  # the OOD claims are scored on the prompts φ1 was not ranked on
            sets["OOD"] = half(sets["OOD"], 1)
        return sets

    def held_out(self, name: str, split: str) -> EvalSet:
        """Every pair of a held-out split, with its annotators' probabilities where the world has them."""
        ps = self.pairset(split)
        return EvalSet(name, split, np.arange(ps.n), ps.choice, ps.group, self.label_probabilities(split))

    def ranking_set(self, corruption: float = 0.0, pool: int = 0) -> EvalSet:
        """The pairs a pool's members are ranked on (`rm.rank_on`): ID validation, all OOD pairs,
        or the OOD pairs of the even prompts (the OOD claims then read the odd ones)."""
        if self.cfg.rank_on == "validation":
            return self.eval_sets(corruption, pool)["ID val"]
        ood = self.held_out("OOD", "test_ood")
        return ood if self.cfg.rank_on == "test_ood" else half(ood, 0)

    def label_probabilities(self, split: str) -> np.ndarray | None:
        """Per pair of a held-out split, the probability that the annotators prefer summary_1
        (`lib.world.data.label_probabilities`); None for real data, which has no annotator model."""
        if self.pl.profile.world.source != "synthetic":
            return None
        if split not in self._p_label:
            self._p_label[split] = D.label_probabilities(self.pl.comparisons[split], self.pl.profile.world)
        return self._p_label[split]
