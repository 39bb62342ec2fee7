"""Schedule (official YOLOX warm-up + cosine), EMA, parameter groups, mixed precision."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mistd.engine.ema import ModelEMA
from mistd.engine.schedule import WarmCosineSchedule, schedule_from_config
from mistd.engine.trainer import Trainer, param_groups
from mistd.models.zoo import ZOO
from mistd.run_config import TrainConfig, build_run_config


def test_default_schedule_matches_the_official_numbers():
    """Official CHAL: lr 8e-5, min 8e-7, 100 epochs, warm-up 3 from 8e-6, last 5 flat."""
    s = schedule_from_config(TrainConfig())
    assert (s.peak, s.total, s.warmup, s.flat) == (8e-5, 100.0, 3.0, 5.0)
    assert (s.warmup_start, s.min_lr) == pytest.approx((8e-6, 8e-7))
    assert s(0) == pytest.approx(8e-6)
    assert s(1.5) == pytest.approx(8e-6 + 7.2e-5 * 0.25)  # quadratic warm-up
    assert s(3) == pytest.approx(8e-5)
    assert s(49) == pytest.approx(8e-7 + 0.5 * (8e-5 - 8e-7))  # half-way through the cosine
    assert s(95) == s(99) == pytest.approx(8e-7)
    lrs = [s(e) for e in range(3, 96)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


def test_short_schedules_keep_a_cosine_part():
    s = WarmCosineSchedule(1.0, 3.0, warmup=3.0, warmup_start=0.1, min_lr=0.01, flat=5.0)
    assert s(0) == pytest.approx(0.1) and s(1) == pytest.approx(1.0)
    assert 0.01 < s(1.5) < 1.0 and s(2) == pytest.approx(0.01)
    assert WarmCosineSchedule(0.5, 10, constant=True)(7) == 0.5


def test_ema_follows_the_official_decay():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.9999, tau=2000)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
        model[1].running_mean.fill_(3.0)
    ema.update(model)
    d = 0.9999 * (1 - math.exp(-1 / 2000))
    torch.testing.assert_close(ema.module[0].weight, d * start + (1 - d) * (start + 1))
    torch.testing.assert_close(ema.module[1].running_mean, torch.full((2,), (1 - d) * 3.0))
    assert not any(p.requires_grad for p in ema.module.parameters()) and not ema.module.training
    other = ModelEMA(model)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and torch.equal(other.module[0].weight, ema.module[0].weight)


def test_parameter_groups_follow_the_official_split():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3)
            self.bn = nn.BatchNorm2d(2)
            self.norm = nn.LayerNorm(2)
            self.table = nn.Parameter(torch.zeros(3))

    net = Net()
    low, high = param_groups(net, 0.05, 0.01)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert low["weight_decay"] == 0.01 and high["weight_decay"] == 0.05
    assert ids(low["params"]) == ids([net.conv.bias, net.bn.weight, net.bn.bias, net.norm.bias])
    # LayerNorm weights are decayed officially (only BatchNorm weights are exempt).
    assert ids(high["params"]) == ids([net.conv.weight, net.norm.weight, net.table])


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_steps_on_cpu(tiny_data, amp):
    cfg = build_run_config(
        "yolox-s",
        {
            "model": ZOO["yolox-s"][0].tiny_overrides(),
            "data": {"train": str(tiny_data), "workers": 0},
            "train": {"amp": amp, "max_steps": 2, "eval_interval": 0, "batch_size": 2,
                      "lr": 1e-3, "warmup_epochs": 0.0},
        },
    )  # fmt: skip
    if amp == "fp16":
        with pytest.warns(UserWarning, match="fp16 needs CUDA"):
            trainer = Trainer(cfg, None, progress=False)
    else:
        trainer = Trainer(cfg, None, progress=False)
    assert trainer.amp_dtype == torch.bfloat16
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.train()
    assert result["iterations"] == 2 and not result["stopped"]
    assert math.isfinite(trainer.last_losses["total"])
    changed = [k for k, v in trainer.model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed  # the weights moved
    assert all(v.dtype == before[k].dtype for k, v in trainer.model.state_dict().items())
