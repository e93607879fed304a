"""The run's batch order: shards of a global batch union to the one-process batch; resuming mid-epoch."""
import itertools

import pytest
import torch

from spikeforge.train.sampler import ShardedBatchSampler


def test_shards_union_is_the_one_process_batch():
    one = ShardedBatchSampler(103, 8, seed=5)
    one.set_epoch(2)
    ranks = [ShardedBatchSampler(103, 8, world=4, rank=r, seed=5) for r in range(4)]
    for s in ranks:
        s.set_epoch(2)
    full = list(one)
    assert len(full) == 12 and all(len(b) == 8 for b in full)  # drop_last: 103 // 8
    for k, shards in enumerate(zip(*ranks)):
        assert sorted(itertools.chain(*shards)) == sorted(full[k]) and all(len(s) == 2 for s in shards)
    perm = torch.randperm(103, generator=torch.Generator().manual_seed(7)).tolist()
    assert list(itertools.chain(*full)) == perm[:96]  # seed + epoch


def test_start_mid_epoch_and_evaluation_order():
    s = ShardedBatchSampler(20, 4, seed=0)
    s.set_epoch(1)
    full = list(s)
    s.set_epoch(1, start=3)
    assert list(s) == full[3:] and len(s) == 2
    ev = ShardedBatchSampler(10, 4, world=2, rank=1, shuffle=False, drop_last=False)
    assert list(ev) == [[1, 3], [5, 7], [9]]
    assert list(ShardedBatchSampler(5, 4, world=4, rank=3, shuffle=False, drop_last=False)) == [[3]]


def test_bad_batch_sizes():
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        ShardedBatchSampler(100, 6, world=4)
    with pytest.raises(ValueError, match="exceeds the 10 training samples"):
        ShardedBatchSampler(10, 16)
