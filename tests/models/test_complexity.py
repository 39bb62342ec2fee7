"""Parameter and MAC counting."""

from __future__ import annotations

import torch
from torch import nn

from mistd.models.complexity import count_macs, count_parameters, count_used_parameters


class _WithDeadLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.used = nn.Conv2d(3, 4, 3, padding=1)  # 3*4*9 + 4 = 112
        self.unused = nn.Linear(10, 10)  # 110, never called
        self.fc = nn.Linear(4, 2)  # 10

    def forward(self, x):
        return self.fc(self.used(x).mean(dim=(2, 3)))


def test_used_parameters_skip_modules_never_called():
    model = _WithDeadLayer()
    x = torch.randn(1, 3, 8, 8)
    assert count_parameters(model) == 112 + 110 + 10
    assert count_used_parameters(model, x) == 112 + 10
    # hooks are removed afterwards
    assert all(not m._forward_hooks for m in model.modules())


def test_macs_of_conv_and_linear():
    model = _WithDeadLayer()
    x = torch.randn(2, 3, 8, 8)
    conv_macs = 2 * 8 * 8 * 4 * 3 * 9
    linear_macs = 2 * 4 * 2
    assert count_macs(model, x) == conv_macs + linear_macs
