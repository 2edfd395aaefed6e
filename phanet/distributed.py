"""Distributed and device plumbing: torchrun process groups, sharded seeded sampling, data loaders.

Launched by ``torchrun`` (``RANK``/``WORLD_SIZE`` in the environment) training runs data-parallel
(NCCL on GPU, gloo on CPU); otherwise everything here degrades to a single process.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from phanet.data.base import FaceDataset, collate_skipping_none


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, dist_info: DistInfo | None = None) -> torch.device:
    from phanet.config import check_device

    check_device(name, "device")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r}: no CUDA GPU is available here (use --device cpu or auto)")
    if device.type == "cuda" and dist_info is not None and dist_info.enabled:
        device = torch.device("cuda", dist_info.local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    return device


def init_distributed(device_name: str = "auto") -> DistInfo:
    """Join the process group torchrun set up (env ``RANK``/``WORLD_SIZE``); single process otherwise."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        use_nccl = torch.cuda.is_available() and device_name != "cpu"
        dist.init_process_group(backend="nccl" if use_nccl else "gloo")
    return info


def all_gather_objects(obj, dist_info: DistInfo) -> list:
    if not dist_info.enabled:
        return [obj]
    out = [None] * dist_info.world_size
    dist.all_gather_object(out, obj)
    return out


def any_rank(flag: bool, dist_info: DistInfo) -> bool:
    """True on every rank if ``flag`` is True on any (so all ranks stop at the same step)."""
    if not dist_info.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return bool(tensor.item() > 0)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)



class EpochSampler(torch.utils.data.Sampler[int]):
    """Seeded per-epoch order, sharded over ranks, optionally class-balanced, resumable mid-epoch.

    Like DistributedSampler (each rank takes every ``world_size``-th index of a shared permutation,
    padded to equal length) plus: class-balanced sampling with replacement (``labels`` given), and
    ``start`` to skip the samples a rank already consumed before an interruption.
    """

    def __init__(self, size: int, seed: int, dist_info: DistInfo, shuffle: bool = True,
                 labels: np.ndarray | None = None):
        self.size = size
        self.seed = seed
        self.dist_info = dist_info
        self.shuffle = shuffle
        self.labels = labels
        self.epoch = 0
        self.start = 0
        self.per_rank = math.ceil(size / dist_info.world_size)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def _order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.labels is not None:
            counts = np.bincount(self.labels)
            weights = torch.as_tensor(1.0 / counts[self.labels], dtype=torch.double)
            return torch.multinomial(weights, self.size, replacement=True, generator=generator)
        if self.shuffle:
            return torch.randperm(self.size, generator=generator)
        return torch.arange(self.size)

    def __iter__(self) -> Iterator[int]:
        order = self._order()
        padded = self.per_rank * self.dist_info.world_size
        if padded > len(order):
            order = torch.cat([order, order[: padded - len(order)]])
        mine = order[self.dist_info.rank::self.dist_info.world_size]
        return iter(mine[self.start:].tolist())

    def __len__(self) -> int:
        return self.per_rank - self.start


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. a container's or taskset's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def loader_workers(requested: int) -> int:
    """DataLoader worker processes: as requested, but no more than the cores this process can use.

    More workers than cores only adds processes that compete with the training threads for the same
    cores (and PyTorch warns about it); on a GPU machine with many cores the request stands.
    """
    return max(0, min(requested, available_cores()))


def make_loader(dataset: FaceDataset, batch_size: int, sampler, workers: int, device: torch.device,
                drop_last: bool) -> torch.utils.data.DataLoader:
    # The loader's own generator (for worker seeds) keeps it from drawing on the global torch RNG,
    # whose state must depend only on the training steps done (exact resume of dropout).
    generator = torch.Generator().manual_seed(getattr(sampler, "seed", 0) * 7919 + getattr(sampler, "epoch", 0))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=loader_workers(workers),
        pin_memory=device.type == "cuda",
        drop_last=drop_last,
        collate_fn=collate_skipping_none,
        # Not persistent: workers are re-created each epoch so they see the dataset's new epoch seed.
        persistent_workers=False,
        generator=generator,
    )
