"""The batch order of a run: one fixed-seed permutation per epoch, cut into global batches, sharded by rank.

Global batch ``k`` of epoch ``e`` is ``perm_e[k·B : (k+1)·B]`` with ``perm_e = randperm(N, seed + e)``;
rank ``r`` of ``W`` processes takes its strided shard ``[r::W]`` (the layout of torch's
``DistributedSampler``, so the union of the shards is the one-process batch). The order depends only on
(seed, epoch), which makes a resumed run start at any batch of an epoch exactly.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

__all__ = ["ShardedBatchSampler"]


class ShardedBatchSampler(Sampler[list[int]]):
    """Yields this rank's index lists of the global batches of one epoch.

    Args:
        n: samples in the data set.
        batch_size: global batch size B (all ranks together); must be a multiple of ``world``.
        world, rank: number of processes and this one's index.
        shuffle: a fixed-seed permutation per epoch (training) or the data set order (evaluation).
        drop_last: drop the last partial global batch (training: every step sees B samples, so the
            DDP-averaged gradient is the global-batch mean).
        seed: the permutation of epoch ``e`` uses ``seed + e``.
    """

    def __init__(self, n: int, batch_size: int, world: int = 1, rank: int = 0, shuffle: bool = True,
                 drop_last: bool = True, seed: int = 0) -> None:
        if batch_size < 1 or batch_size % world:
            raise ValueError(f"train.batch_size={batch_size} must be a positive multiple of the number of processes ({world})")
        if drop_last and n < batch_size:
            raise ValueError(f"train.batch_size={batch_size} exceeds the {n} training samples")
        self.n, self.batch_size, self.world, self.rank = int(n), int(batch_size), int(world), int(rank)
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch``'s order, beginning at its global batch ``start`` (for a resumed run)."""
        self.epoch, self.start = int(epoch), int(start)

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        return full + (0 if self.drop_last or rest == 0 else 1) - self.start

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(self.n)
        for k in range(self.start, self.start + len(self)):
            batch = order[k * self.batch_size:(k + 1) * self.batch_size]
            shard = batch[self.rank::self.world].tolist()
            if shard:  # a short last evaluation batch may leave a rank nothing
                yield shard
