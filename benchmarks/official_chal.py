"""The official CHAL implementation and the fixture weights, for the benchmarks that compare
mistd's `chal` with it (`chal_latency.py`, `streaming_speed.py`).

mistd's own `chal` with the fixture weights is `mistd.weights.read_weights`' job:
`chal_model(size)` below is a use of it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from mistd.weights import read_weights

FIXTURE = Path(__file__).resolve().parents[1] / ".." / "shared" / "fixtures" / "chal_official"
FIXTURE_WEIGHTS = FIXTURE / "official_state_dict_fp16.pt"


def fixture_state_dict() -> dict[str, torch.Tensor] | None:
    """The official CHAL weights of the shared fidelity fixture in float32 (official key names),
    or None when the fixture is absent."""
    if not FIXTURE_WEIGHTS.is_file():
        return None
    state_dict = torch.load(FIXTURE_WEIGHTS, weights_only=True)
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def chal_model(size: int | None = None) -> nn.Module:
    """mistd's `chal` (input `size` x `size` when given) with the fixture weights converted into
    it, or random weights when the fixture is absent; eval mode."""
    source = FIXTURE_WEIGHTS if FIXTURE_WEIGHTS.is_file() else "chal"
    overrides = {"input_size": [size, size]} if size is not None else None
    return read_weights(source, zoo=True).build_model(overrides)


# The official repository imports `nets/module/CBAM.py` but does not contain it. This is CBAM as
# its paper defines it (Woo et al., ECCV 2018: channel attention from average- and max-pooled
# descriptors through one shared MLP with reduction 16; spatial attention from the channel mean and
# max through a 7x7 conv), written here with the parameter names of the official checkpoints
# (`channel_attention.shared_MLP.{0,2}`, `spatial_attention.conv2d`).
CBAM_FROM_PAPER = """import torch
from torch import nn


class ChannelAttention(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.shared_MLP = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x):
        average = self.shared_MLP(x.mean(dim=(2, 3), keepdim=True))
        maximum = self.shared_MLP(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(average + maximum)


class SpatialAttention(nn.Module):
    def __init__(self, kernel_size=7):
        super().__init__()
        self.conv2d = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv2d(pooled))


class CBAM(nn.Module):
    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        self.channel_attention = ChannelAttention(channels, reduction)
        self.spatial_attention = SpatialAttention(kernel_size)

    def forward(self, x):
        x = x * self.channel_attention(x)
        return x * self.spatial_attention(x)
"""


def complete_checkout(checkout: str | Path) -> None:
    """Write `nets/module/CBAM.py` (`CBAM_FROM_PAPER`) into an official checkout that lacks it."""
    path = Path(checkout) / "nets" / "module" / "CBAM.py"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(CBAM_FROM_PAPER)


def official_chal(checkout: str | Path, state_dict: dict[str, torch.Tensor] | None) -> nn.Module:
    """The official CHAL model (`nets/slowfastnet.py::slowfastnet`, 1 class, T=5) imported from
    the user's checkout at `checkout` (a `git clone` of UESTC-nnLab/CHAL; its missing CBAM module
    is written by `complete_checkout`), with `state_dict` loaded when given; eval mode."""
    complete_checkout(checkout)
    sys.path.insert(0, str(checkout))
    from nets.slowfastnet import slowfastnet  # the user's official checkout

    model = slowfastnet(num_classes=1, num_frame=5)
    if state_dict is not None:
        model.load_state_dict(state_dict, strict=True)
    return model.eval()
