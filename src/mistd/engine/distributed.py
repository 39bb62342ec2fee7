"""Data-parallel helpers: process-group setup, batch sharding, synchronised BatchNorm.

Launch with torchrun (one process per GPU, or several CPU processes with gloo):

    torchrun --nproc_per_node 4 -m mistd.cli train --model chal --data train.txt
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --master_port 29500 \
        --nproc_per_node 8 -m mistd.cli train --model chal --data train.txt

Every process reads the same data set and the same (seed, epoch) permutation; global batch `g`
goes to process `r` as items `[r * b, (r + 1) * b)` with `b = batch_size / world_size`, so the
union of the per-process batches is exactly the single-process batch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

from mistd.device import resolve_device
from mistd.errors import InputError


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: `rank` of `world_size`, `local_rank` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group torchrun describes (env RANK/WORLD_SIZE/LOCAL_RANK), if any.

    Backend: nccl for CUDA devices, gloo for CPU. Without torchrun this is a single process.
    """
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        return DistInfo(dist.get_rank(), dist.get_world_size(), local_rank)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    torch_device = resolve_device(device, local_rank)
    backend = "nccl" if torch_device.type == "cuda" else "gloo"
    if torch_device.type == "cuda":
        torch.cuda.set_device(torch_device)
    dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    """Leave the process group (after everyone is done)."""
    if info.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def all_reduce_max(value: float, info: DistInfo) -> float:
    """Max of a python number over all processes (e.g. a 'loss is not finite' flag)."""
    if not info.enabled:
        return value
    backend_cuda = dist.get_backend() == "nccl"
    t = torch.tensor([value], dtype=torch.float64, device="cuda" if backend_cuda else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Mean of named python numbers over all processes (for logging)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    backend_cuda = dist.get_backend() == "nccl"
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    t = t.cuda() if backend_cuda else t
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist(), strict=True)}


class ShardedBatchSampler:
    """Batches of dataset indices, a pure function of (seed, epoch), sharded over processes.

    Each epoch draws a permutation from `torch.Generator().manual_seed(seed + epoch)`, keeps
    `num_batches` full GLOBAL batches of `global_batch_size` (the last partial batch is dropped)
    and yields this process's slice of each. `start_batch` skips batches already consumed, which
    is how a resumed run continues mid-epoch with exactly the data it would have seen.
    """

    def __init__(
        self,
        dataset_size: int,
        global_batch_size: int,
        *,
        seed: int,
        info: DistInfo = DistInfo(),
        epoch_fraction: float = 1.0,
        shuffle: bool = True,
    ):
        if global_batch_size % info.world_size:
            raise InputError(
                f"train.batch_size={global_batch_size} (global) is not divisible by the "
                f"{info.world_size} data-parallel processes"
            )
        full = dataset_size // global_batch_size
        if full == 0:
            raise InputError(
                f"the training set has {dataset_size} clips, fewer than one batch of "
                f"train.batch_size={global_batch_size}"
            )
        self.dataset_size = dataset_size
        self.global_batch_size = global_batch_size
        self.local_batch_size = global_batch_size // info.world_size
        self.num_batches = max(1, int(full * epoch_fraction))
        self.seed = seed
        self.info = info
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch = epoch
        self.start_batch = start_batch

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All global batches of `epoch` (same on every process)."""
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + epoch)
            order = torch.randperm(self.dataset_size, generator=generator).tolist()
        else:
            order = list(range(self.dataset_size))
        g = self.global_batch_size
        return [order[i * g : (i + 1) * g] for i in range(self.num_batches)]

    def __iter__(self) -> Iterator[list[int]]:
        lo = self.info.rank * self.local_batch_size
        for batch in self.global_batches(self.epoch)[self.start_batch :]:
            yield batch[lo : lo + self.local_batch_size]

    def __len__(self) -> int:
        return self.num_batches - self.start_batch


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes, differentiable: the gradient of every input is the sum of the
    gradients of all outputs (each process's input feeds every process's output)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _DistributedBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are pooled over all processes (any device).

    torch's `SyncBatchNorm` refuses CPU tensors; this one sums (count, sum, sum of squares) with
    a differentiable all-reduce, so gradients flow through the
    global statistics exactly as in one process with the whole batch.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = torch.cat([count, x.sum(dims), (x * x).sum(dims)])
        stats = _AllReduceSum.apply(stats)
        n = stats[0]
        mean = stats[1 : 1 + x.shape[1]] / n
        var = stats[1 + x.shape[1] :] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum
                if m is None:  # cumulative moving average, as BatchNorm does
                    m = 1.0 / float(self.num_batches_tracked)
                unbiased = var * (n / (n - 1).clamp(min=1))
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        shape = [1, x.shape[1]] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm by a synchronised one (torch's on CUDA, ours elsewhere)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    out = module
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(
        module, _DistributedBatchNorm
    ):
        out = _DistributedBatchNorm(
            module.num_features,
            module.eps,
            module.momentum,
            module.affine,
            module.track_running_stats,
        )
        if module.affine:
            with torch.no_grad():
                out.weight = module.weight
                out.bias = module.bias
        if module.track_running_stats:
            out.running_mean = module.running_mean
            out.running_var = module.running_var
            out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
    for name, child in module.named_children():
        out.add_module(name, convert_sync_batchnorm(child, device))
    return out
