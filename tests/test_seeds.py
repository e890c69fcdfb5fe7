"""The seed rules (lib.seeds) keep the streams they make apart."""

import pytest

from lib import seeds
from lib.config import RMPoolConfig, WARPConfig


def test_the_members_of_every_pool_and_the_runs_of_every_warp_iteration_get_distinct_seeds():
    m, n_seeds = seeds.POOL_STRIDE - 1, 4
    members = [seeds.rm_member_seed(p, i) for p in range(n_seeds) for i in range(m)]
    assert len(set(members)) == len(members)
    runs = [seeds.run_seed(7, it, r) for it in range(3) for r in range(seeds.ITERATION_STRIDE - 1)]
    assert len(set(runs)) == len(runs)


def test_a_pool_or_a_warp_call_too_large_for_its_stride_is_refused():
    with pytest.raises(ValueError, match="rm.m must be < 100"):
        RMPoolConfig(m=seeds.POOL_STRIDE)
    with pytest.raises(ValueError, match=r"m must be in \[1, 1000\)"):
        WARPConfig(m=seeds.ITERATION_STRIDE)


def test_the_eval_samples_and_every_training_step_and_pool_batch_sample_with_distinct_seeds():
    train = {seeds.step_seed(3, s) for s in range(1, 5000)}
    assert seeds.step_seed(3, -1) not in train and len(train) == 4999
    assert seeds.batch_seed(3, 0) == seeds.step_seed(3, 0) and seeds.batch_seed(4, 0) not in train


def test_the_data_order_stream_is_not_the_plain_seed_stream():
    import numpy as np

    assert not np.array_equal(seeds.data_order_rng(0).permutation(50), np.random.default_rng(0).permutation(50))
    assert np.array_equal(seeds.epoch_permutation(50, 1, 2), seeds.epoch_permutation(50, 1, 2))
    assert not np.array_equal(seeds.epoch_permutation(50, 1, 2), seeds.epoch_permutation(50, 1, 3))
