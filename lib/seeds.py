"""Every seed rule of the repository, in one place: how a config's seed becomes the seeds of the
runs, batches and random streams it makes, each kept apart from the others. Changing a rule moves
every number that depends on it: bump the versions of the stages that use it.
"""

from __future__ import annotations

import numpy as np

POOL_STRIDE = 100  # RMs: member i of seeded pool p trains with seed POOL_STRIDE·p + i (m < POOL_STRIDE)
ITERATION_STRIDE = 1000  # WARP: run m of iteration i trains with seed base + ITERATION_STRIDE·i + m (M < it)
STEP_STRIDE = 1_000_003  # sampling: step s of a run with seed σ samples with seed σ·STEP_STRIDE + s
EVAL_STEP = 999_983  # the step number of RL's evaluation samples, far from any training step's
RANDOM_INIT_OFFSET = 1000  # a random-init control RM of seed σ draws its weights with seed 1000 + σ
PAIRS_SPLIT_OFFSET = 100  # the pairs of split j are sampled with seed 1000·pairs.seed + 100 + j
# An RM's data order draws from its own stream: a plain `default_rng(seed)` would replay the label
# corruption's permutation (`lib.world.world.corrupt_labels`, seeded with the world seed) for the RM
# whose seed equals the world seed, and that RM would see only the flipped pairs first.
_DATA_ORDER_STREAM = 0x5244  # "RD"


def rm_member_seed(pool: int, member: int) -> int:
    """The training seed of member `member` (0-based) of seeded pool `pool`."""
    return POOL_STRIDE * pool + member


def run_seed(base_seed: int, iteration: int, run: int) -> int:
    """The RL seed of run `run` (0-based) of WARP iteration `iteration` (0-based): distinct for all
    runs of a WARP call since M < ITERATION_STRIDE."""
    return base_seed + ITERATION_STRIDE * iteration + run


def step_seed(seed: int, step: int) -> int:
    """The sampling seed of RL training step `step` (the eval samples use `step_seed(seed, -1)`)."""
    return seed * STEP_STRIDE + (step if step >= 0 else EVAL_STEP)


def batch_seed(seed: int, batch: int) -> int:
    """The seed of batch `batch` of a sample pool drawn with `SamplingConfig.seed` = `seed`."""
    return seed * STEP_STRIDE + batch


def pairs_sampling_seed(pairs_seed: int, split: int) -> int:
    """The sampling seed of the policy samples behind split `split` (train 0, validation 1, OOD 2)."""
    return 1000 * pairs_seed + PAIRS_SPLIT_OFFSET + split


def random_init_seed(seed: int) -> int:
    """The weight seed of a random-init control RM whose training seed is `seed`."""
    return RANDOM_INIT_OFFSET + seed


def data_order_rng(seed: int) -> np.random.Generator:
    """The generator of an RM's data order, independent of every other seeded stream."""
    return np.random.default_rng([seed, _DATA_ORDER_STREAM])


def epoch_permutation(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of `n` RL prompts in epoch `epoch` of a run with seed `seed`."""
    return np.random.default_rng([seed, epoch]).permutation(n)
