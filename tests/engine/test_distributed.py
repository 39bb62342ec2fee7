"""Data-parallel training: 2 CPU processes (gloo) == 1 process with the same GLOBAL batch.

Why a model defined here: a YOLOX-style loss is normalised by the number of foreground anchors
of the batch it sees, so with DDP (gradients averaged over per-process losses, each normalised by
its own count) it is not the full-batch loss; no data-parallel trainer reproduces a single process
exactly with such a loss. The machinery under test (sharding, gradient averaging, synchronised
BatchNorm, rank-0 checkpoints) is exercised with a model whose loss is a per-clip mean, so exact
agreement is the right expectation. Data, sampler, optimizer, EMA, checkpoints are the real ones.
With BatchNorm, per-process batches see different statistics: `train.sync_bn=true` makes them the
global batch's, and the test also checks that WITHOUT it the result differs (so the comparison
is not vacuous). A NaN loss on one process makes every process skip that step.
"""

from __future__ import annotations

import os
import socket
import warnings

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from mistd.checkpoint import load_checkpoint
from mistd.engine.distributed import DistInfo, ShardedBatchSampler
from mistd.engine.trainer import Trainer
from mistd.run_config import build_run_config

pytestmark = pytest.mark.slow


class CentreRegressor(nn.Module):
    """conv + BatchNorm + SiLU -> pooled features -> the key frame's first target centre.

    loss = mean over clips of the squared error (per-clip mean: linear in the batch). On calls
    in `nan_calls` the loss is NaN, in a data-parallel run on rank 1 only: every process must
    then skip that step together, as the single process does.
    """

    num_frames = 2

    def __init__(self, nan_calls: tuple[int, ...] = (3,)):
        super().__init__()
        self.nan_calls = nan_calls
        self.calls = 0
        torch.manual_seed(0)
        self.features = nn.Sequential(
            nn.Conv2d(6, 8, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.SiLU(),
            nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.SiLU(),
        )
        self.out = nn.Linear(8, 2)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = clip.shape
        x = self.features(clip.reshape(b, t * c, h, w))
        return self.out(x.mean((2, 3)))

    def loss(self, clip, targets):
        centre = torch.stack([t[0, 1:3] / 64.0 for t in targets])
        error = ((self.forward(clip) - centre) ** 2).sum(1).mean()
        self.calls += 1
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 1
        if self.calls in self.nan_calls and rank == 1:
            error = error * float("nan")
        return {"total": error, "mse": error.detach()}


def _cfg(data, run_dir, sync_bn: bool):
    return build_run_config(
        "mf-baseline",
        {
            "model": {"num_frames": 2, "input_size": [64, 64]},
            "data": {"train": str(data), "workers": 0},
            "train": {
                "epochs": 2,
                "batch_size": 8,
                "epoch_fraction": 1.0,
                "eval_interval": 0,
                "lr": 1e-2,
                "warmup_epochs": 0.5,
                "flat_epochs": 0.0,
                "lr_step": "iteration",
                "sync_bn": sync_bn,
                "find_unused_parameters": False,
                "ema_tau": 3.0,
                "device": "cpu",
            },
        },
    )


def _worker(rank: int, world_size: int, port: int, data: str, run_dir: str, sync_bn: bool):
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    torch.set_num_threads(1)
    trainer = Trainer(
        _cfg(data, run_dir, sync_bn),
        run_dir if rank == 0 else None,
        model=CentreRegressor(),
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the non-finite step (rank 1) / skipped step (rank 0)
        trainer.train()
    torch.distributed.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_run(tiny_data, run_dir, sync_bn: bool) -> dict:
    mp.spawn(
        _worker,
        args=(2, _free_port(), str(tiny_data), str(run_dir), sync_bn),
        nprocs=2,
        join=True,
    )
    return load_checkpoint(run_dir / "weights" / "last.pt")


def test_sharding_covers_the_global_batch_exactly():
    single = ShardedBatchSampler(24, 8, seed=5)
    single.set_epoch(3)
    shards = []
    for rank in range(2):
        sampler = ShardedBatchSampler(24, 8, seed=5, info=DistInfo(rank, 2, rank))
        sampler.set_epoch(3)
        shards.append(list(sampler))
    assert [a + b for a, b in zip(*shards, strict=True)] == list(single)
    single.set_epoch(3, start_batch=1)  # resuming skips consumed batches
    assert list(single) == [a + b for a, b in zip(*shards, strict=True)][1:]


def test_two_processes_match_one_process_with_the_same_global_batch(tiny_data, tmp_path):
    single = Trainer(
        _cfg(tiny_data, tmp_path / "single", False),
        tmp_path / "single",
        model=CentreRegressor(),
        progress=False,
    )
    with pytest.warns(UserWarning, match="non-finite loss"):
        single.train()
    reference = load_checkpoint(tmp_path / "single" / "weights" / "last.pt")
    synced = _ddp_run(tiny_data, tmp_path / "ddp_sync", sync_bn=True)
    assert synced["iteration"] == reference["iteration"] == 6  # 24 clips / 8, 2 epochs
    assert synced["world_size"] == 2
    for key in ("state_dict",):
        for name, value in reference[key].items():
            torch.testing.assert_close(synced[key][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for name, value in reference["ema"]["state_dict"].items():
        torch.testing.assert_close(synced["ema"]["state_dict"][name], value, rtol=1e-4, atol=1e-5)
    # Per-epoch mean losses (averaged over processes) agree too.
    for a, b in zip(reference["history"], synced["history"], strict=True):
        assert a["loss_mse"] == pytest.approx(b["loss_mse"], rel=1e-4)

    plain = _ddp_run(tiny_data, tmp_path / "ddp_plain", sync_bn=False)
    diff = max(
        (plain["state_dict"][k] - v).abs().max().item()
        for k, v in reference["state_dict"].items()
        if v.is_floating_point()
    )
    assert diff > 1e-3  # per-process BatchNorm statistics: not the single-process result
