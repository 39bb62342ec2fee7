"""YOLOX decoupled head (any number of levels).

The head only maps features to raw per-level maps; assignment and loss live in
`mistd.losses.criterion.YOLOXCriterion`, box decoding in `mistd.decoding.decode_outputs`.
Attribute names (`stems, cls_convs, reg_convs, cls_preds, reg_preds, obj_preds`) match YOLOX and
the official CHAL `nets/slowfastnet.py::YOLOXHead`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mistd.models.blocks import Activation, BaseConv, conv_type


class YOLOXHead(nn.Module):
    """Decoupled head: per level a 1x1 stem, then a classification branch and a regression branch.

    Args:
        num_classes: number of target classes.
        in_channels: input channels per level, finest first (CHAL: `(128,)`; YOLOX-S:
            `(128, 256, 512)`).
        strides: stride of each level in input pixels (CHAL: `(8,)`; YOLOX: `(8, 16, 32)`).
        hidden_channels: width of stem and branches (YOLOX: `int(256 * width)`; CHAL: 256).
        depthwise, act: conv type and activation of the branch convs.
        prior_prob: initial foreground probability of the obj/cls outputs (YOLOX: 0.01).

    `forward(list of [B, C_i, H_i, W_i]) -> list of [B, 4 + 1 + num_classes, H_i, W_i]` with the
    channel order (reg x, y, w, h, obj, cls...), all raw (logits / un-decoded offsets).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        in_channels: tuple[int, ...],
        strides: tuple[int, ...],
        hidden_channels: int = 256,
        depthwise: bool = False,
        act: Activation = "silu",
        prior_prob: float = 1e-2,
    ):
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError(f"in_channels {in_channels} and strides {strides} differ in length")
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        conv = conv_type(depthwise)
        h = hidden_channels
        self.stems = nn.ModuleList()
        self.cls_convs = nn.ModuleList()
        self.reg_convs = nn.ModuleList()
        self.cls_preds = nn.ModuleList()
        self.reg_preds = nn.ModuleList()
        self.obj_preds = nn.ModuleList()
        for c in in_channels:
            self.stems.append(BaseConv(c, h, 1, 1, act=act))
            self.cls_convs.append(
                nn.Sequential(conv(h, h, 3, 1, act=act), conv(h, h, 3, 1, act=act))
            )
            self.reg_convs.append(
                nn.Sequential(conv(h, h, 3, 1, act=act), conv(h, h, 3, 1, act=act))
            )
            self.cls_preds.append(nn.Conv2d(h, num_classes, 1))
            self.reg_preds.append(nn.Conv2d(h, 4, 1))
            self.obj_preds.append(nn.Conv2d(h, 1, 1))
        self.initialize_biases(prior_prob)

    def initialize_biases(self, prior_prob: float) -> None:
        """Bias obj/cls logits to `prior_prob` so early training is not swamped by background
        (YOLOX `initialize_biases`; focal-loss RetinaNet prior)."""
        bias = -math.log((1 - prior_prob) / prior_prob)
        for pred in list(self.cls_preds) + list(self.obj_preds):
            nn.init.constant_(pred.bias, bias)

    @property
    def num_outputs(self) -> int:
        """Channels per output map: 4 (box) + 1 (obj) + num_classes."""
        return 5 + self.num_classes

    def forward(
        self, features: list[torch.Tensor] | tuple[torch.Tensor, ...]
    ) -> list[torch.Tensor]:
        outputs = []
        for k, x in enumerate(features):
            x = self.stems[k](x)
            cls_feat = self.cls_convs[k](x)
            reg_feat = self.reg_convs[k](x)
            outputs.append(
                torch.cat(
                    [
                        self.reg_preds[k](reg_feat),
                        self.obj_preds[k](reg_feat),
                        self.cls_preds[k](cls_feat),
                    ],
                    dim=1,
                )
            )
        return outputs
