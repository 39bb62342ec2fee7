"""YOLOX PAFPN neck: top-down then bottom-up fusion of C3/C4/C5 into P3/P4/P5.

Layer names here say what each layer does; the comment on each gives the official name in YOLOX
`yolo_pafpn.py` / CHAL `nets/slowfastnet.py::YOLOPAFPN` for checkpoint conversion.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mistd.models.blocks import Activation, BaseConv, CSPLayer, conv_type

# Official name of each layer, for checkpoint converters.
OFFICIAL_NAMES = {
    "lateral_conv_p5": "lateral_conv0",
    "top_down_p4": "C3_p4",
    "reduce_conv_p4": "reduce_conv1",
    "top_down_p3": "C3_p3",
    "bottom_up_conv_p3": "bu_conv2",
    "bottom_up_p4": "C3_n3",
    "bottom_up_conv_p4": "bu_conv1",
    "bottom_up_p5": "C3_n4",
}


class PAFPN(nn.Module):
    """Path-aggregation FPN over three backbone levels (strides 8/16/32).

    Args:
        in_shapes: `{name: (channels, stride)}` of the three inputs, finest first (a backbone's
            `output_shape()` restricted to `in_features`).
        in_features: names of the three backbone outputs used, finest first.
        depth: depth multiplier (CSP blocks per layer = round(3 * depth)).
        depthwise, act: as in the backbone.

    `forward(dict name -> [B, C_i, H_i, W_i]) -> (P3, P4, P5)`, each with the channels and stride
    of the corresponding input (YOLOX-S: 128/8, 256/16, 512/32).
    """

    def __init__(
        self,
        *,
        in_shapes: dict[str, tuple[int, int]],
        in_features: tuple[str, str, str] = ("dark3", "dark4", "dark5"),
        depth: float = 0.33,
        depthwise: bool = False,
        act: Activation = "silu",
    ):
        super().__init__()
        if len(in_features) != 3:
            raise ValueError(f"PAFPN needs exactly three input levels, got {in_features}")
        self.in_features = tuple(in_features)
        c3, c4, c5 = (in_shapes[f][0] for f in in_features)
        self._shapes = {
            "p3": (c3, in_shapes[in_features[0]][1]),
            "p4": (c4, in_shapes[in_features[1]][1]),
            "p5": (c5, in_shapes[in_features[2]][1]),
        }
        n = round(3 * depth)
        conv = conv_type(depthwise)

        def csp(cin: int, cout: int) -> CSPLayer:
            return CSPLayer(cin, cout, num_blocks=n, shortcut=False, depthwise=depthwise, act=act)

        self.lateral_conv_p5 = BaseConv(c5, c4, 1, 1, act=act)  # lateral_conv0
        self.top_down_p4 = csp(2 * c4, c4)  # C3_p4
        self.reduce_conv_p4 = BaseConv(c4, c3, 1, 1, act=act)  # reduce_conv1
        self.top_down_p3 = csp(2 * c3, c3)  # C3_p3
        self.bottom_up_conv_p3 = conv(c3, c3, 3, 2, act=act)  # bu_conv2
        self.bottom_up_p4 = csp(2 * c3, c4)  # C3_n3
        self.bottom_up_conv_p4 = conv(c4, c4, 3, 2, act=act)  # bu_conv1
        self.bottom_up_p5 = csp(2 * c4, c5)  # C3_n4

    def output_shape(self) -> dict[str, tuple[int, int]]:
        """`{"p3"|"p4"|"p5": (channels, stride)}`."""
        return dict(self._shapes)

    def forward(
        self, features: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        c3, c4, c5 = (features[f] for f in self.in_features)
        lateral5 = self.lateral_conv_p5(c5)
        x = self.top_down_p4(torch.cat([_up2(lateral5), c4], dim=1))
        lateral4 = self.reduce_conv_p4(x)
        p3 = self.top_down_p3(torch.cat([_up2(lateral4), c3], dim=1))
        p4 = self.bottom_up_p4(torch.cat([self.bottom_up_conv_p3(p3), lateral4], dim=1))
        p5 = self.bottom_up_p5(torch.cat([self.bottom_up_conv_p4(p4), lateral5], dim=1))
        return p3, p4, p5


def _up2(x: torch.Tensor) -> torch.Tensor:
    # nn.Upsample(scale_factor=2, mode="nearest") in the official code.
    return F.interpolate(x, scale_factor=2.0, mode="nearest")
