"""CSPDarknet: the YOLOX backbone (YOLOX-S: depth 0.33, width 0.50).

Stages and their outputs at width 0.5: `stem` (Focus, /2, 32ch), `dark2` (/4, 64ch),
`dark3` (/8, 128ch), `dark4` (/16, 256ch), `dark5` (/32, 512ch, with SPP 5/9/13). Attribute names
and Sequential indices match YOLOX and the official CHAL `nets/darknet.py::CSPDarknet`.
"""

from __future__ import annotations

import torch
from torch import nn

from mistd.models.blocks import Activation, CSPLayer, Focus, SPPBottleneck, conv_type

STAGES = ("stem", "dark2", "dark3", "dark4", "dark5")


class CSPDarknet(nn.Module):
    """YOLOX CSPDarknet.

    Args:
        depth: depth multiplier (number of Bottlenecks per CSP stage scales with it).
        width: width multiplier (channels = 64 * width at the stem, doubling per stage).
        out_features: which stages `forward` returns (any of `stem, dark2, dark3, dark4, dark5`);
            BP-FPN asks for `dark2` (C2, stride 4) as well.
        depthwise: use depthwise-separable 3x3 convs (YOLOX-Nano style).
        act: activation of every BaseConv.

    `forward([B, 3, H, W]) -> dict stage -> [B, C, H/s, W/s]` (H, W multiples of 32).
    """

    def __init__(
        self,
        *,
        depth: float = 0.33,
        width: float = 0.50,
        out_features: tuple[str, ...] = ("dark3", "dark4", "dark5"),
        depthwise: bool = False,
        act: Activation = "silu",
    ):
        super().__init__()
        unknown = [f for f in out_features if f not in STAGES]
        if not out_features or unknown:
            raise ValueError(
                f"out_features must be a non-empty subset of {STAGES}, got {out_features}"
            )
        self.out_features = tuple(out_features)
        conv = conv_type(depthwise)
        base = int(width * 64)
        base_depth = max(round(depth * 3), 1)
        self._channels = {
            "stem": base,
            "dark2": base * 2,
            "dark3": base * 4,
            "dark4": base * 8,
            "dark5": base * 16,
        }
        self._strides = {"stem": 2, "dark2": 4, "dark3": 8, "dark4": 16, "dark5": 32}

        def csp(channels: int, n: int, shortcut: bool = True) -> CSPLayer:
            return CSPLayer(
                channels, channels, num_blocks=n, shortcut=shortcut, depthwise=depthwise, act=act
            )

        self.stem = Focus(3, base, kernel_size=3, act=act)
        self.dark2 = nn.Sequential(conv(base, base * 2, 3, 2, act=act), csp(base * 2, base_depth))
        self.dark3 = nn.Sequential(
            conv(base * 2, base * 4, 3, 2, act=act), csp(base * 4, base_depth * 3)
        )
        self.dark4 = nn.Sequential(
            conv(base * 4, base * 8, 3, 2, act=act), csp(base * 8, base_depth * 3)
        )
        self.dark5 = nn.Sequential(
            conv(base * 8, base * 16, 3, 2, act=act),
            SPPBottleneck(base * 16, base * 16, act=act),
            csp(base * 16, base_depth, shortcut=False),
        )

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """`{stage: (channels, stride)}` for each stage in `out_features`."""
        return {f: (self._channels[f], self._strides[f]) for f in self.out_features}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        outputs: dict[str, torch.Tensor] = {}
        deepest = max(STAGES.index(f) for f in self.out_features)
        for name in STAGES[: deepest + 1]:
            x = getattr(self, name)(x)
            if name in self.out_features:
                outputs[name] = x
        return outputs
