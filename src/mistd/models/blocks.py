"""Shared building blocks (YOLOX family): BaseConv, DWConv, Focus, Bottleneck, CSPLayer, SPP.

Module nesting and attribute names match YOLOX and the official CHAL code (`nets/darknet.py`) so
that an official state dict loads after renaming prefixes only: `BaseConv.conv/.bn/.act`,
`Focus.conv`, `Bottleneck.conv1/.conv2`, `CSPLayer.conv1/.conv2/.conv3/.m`,
`SPPBottleneck.conv1/.m/.conv2`, `DWConv.dconv/.pconv`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Activation = Literal["silu", "relu", "lrelu", "sigmoid"]

# YOLOX's BatchNorm settings (official `BaseConv`): eps 1e-3, momentum 0.03.
BN_EPS = 1e-3
BN_MOMENTUM = 0.03


def make_activation(name: Activation = "silu") -> nn.Module:
    """The activation module for `name` (CHAL uses `sigmoid` on its last anomaly convs)."""
    if name == "silu":
        return nn.SiLU()
    if name == "relu":
        return nn.ReLU()
    if name == "lrelu":
        return nn.LeakyReLU(0.1)
    if name == "sigmoid":
        return nn.Sigmoid()
    raise ValueError(f"unknown activation {name!r}; expected silu, relu, lrelu or sigmoid")


class BaseConv(nn.Module):
    """Conv2d (no bias, 'same' padding for odd kernels) + BatchNorm + activation.

    `[B, in_channels, H, W] -> [B, out_channels, H/stride, W/stride]`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        groups: int = 1,
        bias: bool = False,
        act: Activation = "silu",
    ):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=(kernel_size - 1) // 2,
            groups=groups,
            bias=bias,
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = make_activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class DWConv(nn.Module):
    """Depthwise `kernel_size` BaseConv followed by a pointwise 1x1 BaseConv."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        *,
        act: Activation = "silu",
    ):
        super().__init__()
        self.dconv = BaseConv(
            in_channels, in_channels, kernel_size, stride, groups=in_channels, act=act
        )
        self.pconv = BaseConv(in_channels, out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pconv(self.dconv(x))


def conv_type(depthwise: bool) -> type[BaseConv] | type[DWConv]:
    """The 3x3 conv used by CSP stages: DWConv for the depthwise (nano/tiny) variants."""
    return DWConv if depthwise else BaseConv


class Focus(nn.Module):
    """Space-to-depth (2x2 blocks -> 4x channels), then a BaseConv: `[B,C,H,W] -> [B,out,H/2,W/2]`.

    Channel order of the 4 phases is (top-left, bottom-left, top-right, bottom-right), as in YOLOX;
    the order matters for loading official weights.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        act: Activation = "silu",
    ):
        super().__init__()
        self.conv = BaseConv(in_channels * 4, out_channels, kernel_size, stride, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top_left = x[..., ::2, ::2]
        bottom_left = x[..., 1::2, ::2]
        top_right = x[..., ::2, 1::2]
        bottom_right = x[..., 1::2, 1::2]
        return self.conv(torch.cat((top_left, bottom_left, top_right, bottom_right), dim=1))


class Bottleneck(nn.Module):
    """1x1 BaseConv -> 3x3 conv, with a residual add when `shortcut` and shapes allow."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        shortcut: bool = True,
        expansion: float = 0.5,
        depthwise: bool = False,
        act: Activation = "silu",
    ):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=act)
        self.conv2 = conv_type(depthwise)(hidden, out_channels, 3, 1, act=act)
        self.use_add = shortcut and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """Cross-stage-partial block: two 1x1 branches, `num_blocks` Bottlenecks on one, concat, 1x1.

    `[B, in_channels, H, W] -> [B, out_channels, H, W]`.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        num_blocks: int = 1,
        shortcut: bool = True,
        expansion: float = 0.5,
        depthwise: bool = False,
        act: Activation = "silu",
    ):
        super().__init__()
        hidden = int(out_channels * expansion)
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=act)
        self.conv2 = BaseConv(in_channels, hidden, 1, 1, act=act)
        self.conv3 = BaseConv(2 * hidden, out_channels, 1, 1, act=act)
        self.m = nn.Sequential(
            *[
                Bottleneck(
                    hidden, hidden, shortcut=shortcut, expansion=1.0, depthwise=depthwise, act=act
                )
                for _ in range(num_blocks)
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), dim=1))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling (YOLOv3-SPP): 1x1 halve, max-pools 5/9/13 (stride 1), concat, 1x1."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel_sizes: tuple[int, ...] = (5, 9, 13),
        act: Activation = "silu",
    ):
        super().__init__()
        hidden = in_channels // 2
        self.conv1 = BaseConv(in_channels, hidden, 1, 1, act=act)
        self.m = nn.ModuleList(
            [nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2) for k in kernel_sizes]
        )
        self.conv2 = BaseConv(hidden * (len(kernel_sizes) + 1), out_channels, 1, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [pool(x) for pool in self.m], dim=1))
