"""Spatio-temporal neural background field (CHAL's SNF, docs/design.md §4.2).

A scene encoder summarises a clip's feature volume into a clip code `z`; an MLP maps the Fourier
features of a pixel's coordinates `(x, y, t)` together with `z` to the background feature that pixel
should have. The official code (`nets/neural_background_field.py`) is reproduced with these facts:

- coordinates: `x = linspace(-1, 1, w)`, `y = linspace(-1, 1, h)` (meshgrid 'ij'), stacked in the
  order (x, y, t); `t = frame_time * time_scale` (official: frame_time is always 1.0 and
  `time_scale` enters through `.item()`, i.e. it never receives a gradient);
- Fourier encoding `[c, sin(f*pi*c), cos(f*pi*c) for f in 2^(0..5)]` -> 39 features, with the
  sin/cos pairs interleaved per frequency;
- MLP on `[PE(39), z(96)]`: 135 -> 256 ReLU -> 256 ReLU -> 256 ReLU, skip (concat `[h, input]`,
  391) -> 256 ReLU -> 256 ReLU -> 128 linear. The official module builds one more hidden layer
  (`hidden_layers.2`) that its loop skips: it is not built here.

The first layer and the skip layer are evaluated split into a coordinate part (the same for every
clip of a size) and a clip-code part (a per-clip bias). That is exact algebra (the concatenation's
matrix product is a sum of the two blocks') and saves most of their arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NUM_COORDS = 3


class SceneEncoder(nn.Module):
    """Clip feature volume `[N, C, T, h, w]` -> clip code `[N, scene_dim + motion_dim]`.

    Scene branch: Conv3d 3x3x3 C -> C/2 + BN3d + ReLU, Conv3d C/2 -> C/4 + BN3d + ReLU,
    AdaptiveAvgPool3d (1, 4, 4), Linear -> scene_hidden, ReLU, Linear -> scene_dim, Tanh.
    Motion branch: Conv3d (2, 3, 3) no temporal padding C -> C/2 + BN3d + ReLU,
    AdaptiveAvgPool3d (1, 2, 2), Linear -> motion_hidden, ReLU, Linear -> motion_dim, Tanh.
    BatchNorm3d keeps PyTorch's defaults (eps 1e-5, momentum 0.1), as officially.
    """

    def __init__(
        self,
        channels: int,
        *,
        scene_dim: int = 64,
        motion_dim: int = 32,
        scene_hidden: int = 128,
        motion_hidden: int = 32,
    ):
        super().__init__()
        half, quarter = channels // 2, channels // 4
        self.volume_convs = nn.Sequential(
            TapConv3d(channels, half, 3, padding=1),
            nn.BatchNorm3d(half),
            nn.ReLU(),
            nn.Conv3d(half, quarter, 3, padding=1),
            nn.BatchNorm3d(quarter),
            nn.ReLU(),
        )
        self.scene_head = nn.Sequential(
            nn.AdaptiveAvgPool3d((1, 4, 4)),
            nn.Flatten(),
            nn.Linear(quarter * 16, scene_hidden),
            nn.ReLU(),
            nn.Linear(scene_hidden, scene_dim),
            nn.Tanh(),
        )
        self.motion_branch = nn.Sequential(
            TapConv3d(channels, half, (2, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(half),
            nn.ReLU(),
            nn.AdaptiveAvgPool3d((1, 2, 2)),
            nn.Flatten(),
            nn.Linear(half * 4, motion_hidden),
            nn.ReLU(),
            nn.Linear(motion_hidden, motion_dim),
            nn.Tanh(),
        )
        self.code_dim = scene_dim + motion_dim

    # The Conv3d layers over the clip volume and their BatchNorms, by name (the Sequentials keep
    # the official parameter names `volume_convs.0.weight`, ...). Streaming inference rebuilds
    # these convolutions from per-frame taps (`mistd.inference.streaming`).
    @property
    def scene_conv1(self) -> TapConv3d:
        """The scene branch's first Conv3d (3x3x3, C -> C/2), reading the volume."""
        return self.volume_convs[0]

    @property
    def scene_bn1(self) -> nn.BatchNorm3d:
        return self.volume_convs[1]

    @property
    def scene_conv2(self) -> nn.Conv3d:
        """The scene branch's second Conv3d (3x3x3, C/2 -> C/4)."""
        return self.volume_convs[3]

    @property
    def scene_bn2(self) -> nn.BatchNorm3d:
        return self.volume_convs[4]

    @property
    def motion_conv(self) -> TapConv3d:
        """The motion branch's Conv3d ((2, 3, 3), no temporal padding, C -> C/2)."""
        return self.motion_branch[0]

    @property
    def motion_bn(self) -> nn.BatchNorm3d:
        return self.motion_branch[1]

    @property
    def scene_code_layers(self) -> nn.Sequential:
        """The scene branch after its pooling and flattening: `[N, C/4 * 16]` -> scene code."""
        return self.scene_head[2:]

    @property
    def motion_code_layers(self) -> nn.Sequential:
        """The motion branch after its pooling and flattening: `[N, C/2 * 4]` -> motion code."""
        return self.motion_branch[5:]

    def forward(self, volume: torch.Tensor) -> torch.Tensor:
        scene = self.scene_head(self.volume_convs(volume))
        motion = self.motion_branch(volume)
        return torch.cat([scene, motion], dim=1)

    def encode_frame_selections(self, frames: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Codes of the volumes `frames[:, index[k]]` without building them: `forward` of
        `frames[:, index].permute(1, 0, 3, 2, 4, 5).flatten(0, 1)`, i.e. `[K*B, Z]`
        (selection-major), from `frames [B, T, C, h, w]` and `index [K, T]`.

        The two Conv3d layers that read the volumes (the scene branch's first and the motion
        branch's) are sums over temporal taps: output time tau = sum_dt W[:, :, dt] * V[tau+dt-p]
        (+ bias). Each tap is a Conv2d applied once per DISTINCT frame (T frames, not K*T volume
        slices) and gathered per volume, with the zero temporal padding as a zero slot: for CHAL's
        5 prefix volumes of 5 frames this is 5x (scene) and 4x (motion) less arithmetic. Exact
        algebra; what follows (BatchNorm3d, ReLU, ...) runs on the assembled tensors unchanged.
        """
        scene = self.scene_head(self.volume_convs[1:](self.scene_conv1(frames, index)))
        motion = self.motion_branch[1:](self.motion_conv(frames, index))
        return torch.cat([scene, motion], dim=1)


class TapConv3d(nn.Conv3d):
    """A Conv3d (temporal stride and dilation 1) that can also read volumes given as frame
    selections: `forward(volume [N, C, T, h, w])` as nn.Conv3d, or
    `forward(frames [B, T, C, h, w], index [K, T])` = the conv of the volumes `frames[:, index[k]]`
    -> `[K*B, out, T_out, h, w]` computed per temporal tap (see `_conv3d_by_taps`)."""

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        if index is None:
            return super().forward(x)
        return _conv3d_by_taps(x, index, self)


def _conv3d_by_taps(frames: torch.Tensor, index: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """`conv(volumes)` for the volumes `frames[:, index[k]]` -> `[K*B, out, T_out, h, w]`.

    `conv` has temporal stride 1 and dilation 1; its spatial part is applied as a Conv2d per tap.
    """
    b, t, c, h, w = frames.shape
    k = index.shape[0]
    taps = conv.kernel_size[0]
    pad_t = conv.padding[0]
    out_channels = conv.out_channels
    weight = conv.weight.transpose(1, 2).reshape(out_channels * taps, c, *conv.kernel_size[1:])
    # [B*T, taps*out, h, w] -> [B, T + 1, taps, out, h, w]; slot T is the zero padding.
    per_tap = F.conv2d(frames.reshape(b * t, c, h, w), weight, None, 1, conv.padding[1:])
    per_tap = per_tap.reshape(b, t, out_channels, taps, h, w).transpose(2, 3)
    per_tap = torch.cat([per_tap, per_tap.new_zeros(b, 1, taps, out_channels, h, w)], dim=1)
    t_out = t + 2 * pad_t - taps + 1
    out_times = torch.arange(t_out, device=index.device)
    tap_offsets = torch.arange(taps, device=index.device)
    source = out_times[:, None] + tap_offsets[None, :] - pad_t  # [T_out, taps]: time each tap reads
    valid = (source >= 0) & (source < t)
    frame = torch.where(valid[None], index[:, source.clamp(0, t - 1)], t)  # [K, T_out, taps]
    out = None
    for dt in range(taps):
        term = per_tap[:, frame[:, :, dt], dt]  # [B, K, T_out, out, h, w]
        out = term if out is None else out + term
    if conv.bias is not None:
        out = out + conv.bias[:, None, None]
    return out.permute(1, 0, 3, 2, 4, 5).reshape(k * b, out_channels, t_out, h, w)


def fourier_features(coords: torch.Tensor, frequencies: Sequence[float]) -> torch.Tensor:
    """`[..., D] -> [..., D * (1 + 2F)]`: `[c, sin(f*pi*c), cos(f*pi*c)]` for each frequency f.

    `frequencies` are plain numbers (fixed at build time; a loop over a tensor would be traced as
    constants with a warning in ONNX export)."""
    encoded = [coords]
    for frequency in frequencies:
        # (f * pi) is rounded to float32 first, as in the official `freq * np.pi * coords` (the
        # frequencies are powers of two, so f * pi in double then float32 is the same number).
        angle = (frequency * math.pi) * coords
        encoded.append(torch.sin(angle))
        encoded.append(torch.cos(angle))
    return torch.cat(encoded, dim=-1)


def pixel_grid(height: int, width: int, device: torch.device | None = None) -> torch.Tensor:
    """`[h*w, 2]` (x, y) in [-1, 1], row-major (y outer, x inner) as the official meshgrid 'ij'."""
    y = torch.linspace(-1, 1, height, device=device)
    x = torch.linspace(-1, 1, width, device=device)
    y_grid, x_grid = torch.meshgrid(y, x, indexing="ij")
    return torch.stack([x_grid, y_grid], dim=-1).reshape(-1, 2)


class ConcatLinear(nn.Linear):
    """`Linear(cat[parts, dim=-1])` evaluated as a sum of per-part products.

    Exact algebra: the product with a concatenation is the sum of the products with the column
    blocks of the weight. Parts only need to broadcast against each other, so a part that is the
    same for every clip (the coordinate features) is multiplied once, and a per-clip part (the
    clip code, `[M, 1, Z]`) becomes a bias. The state dict is a plain Linear's (`weight`, `bias`).
    """

    def __init__(self, part_dims: tuple[int, ...], out_features: int):
        super().__init__(sum(part_dims), out_features)
        self.part_dims = tuple(part_dims)

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        if len(parts) != len(self.part_dims):
            raise ValueError(f"expected {len(self.part_dims)} parts, got {len(parts)}")
        out = None
        start = 0
        for part, dim in zip(parts, self.part_dims, strict=True):
            weight = self.weight[:, start : start + dim]
            term = F.linear(part, weight, self.bias if out is None else None)
            out = term if out is None else out + term
            start += dim
        return out


class BackgroundFieldMLP(nn.Module):
    """Coordinate MLP with one skip connection.

    `forward(coord_features [N, P] or [M, N, P], code [M, Z]) -> [M, N, out_channels]`, equal to
    `MLP(cat[coord_features, code])`: input layer (P + Z -> hidden), `layers_before_skip`
    hidden layers, the skip layer on `cat[h, coord_features, code]`, `layers_after_skip` hidden
    layers (all ReLU), then a linear output layer.
    """

    def __init__(
        self,
        coord_dim: int,
        code_dim: int,
        *,
        hidden: int = 256,
        out_channels: int = 128,
        layers_before_skip: int = 2,
        layers_after_skip: int = 1,
    ):
        super().__init__()
        self.input_layer = ConcatLinear((coord_dim, code_dim), hidden)
        self.layers_before_skip = nn.ModuleList(
            [nn.Linear(hidden, hidden) for _ in range(layers_before_skip)]
        )
        self.skip_layer = ConcatLinear((hidden, coord_dim, code_dim), hidden)
        self.layers_after_skip = nn.ModuleList(
            [nn.Linear(hidden, hidden) for _ in range(layers_after_skip)]
        )
        self.output_layer = nn.Linear(hidden, out_channels)

    def forward(self, coord_features: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        code = code[:, None, :]  # [M, 1, Z]: a per-clip bias over the pixels
        x = F.relu(self.input_layer(coord_features, code))
        for layer in self.layers_before_skip:
            x = F.relu(layer(x))
        x = F.relu(self.skip_layer(x, coord_features, code))
        for layer in self.layers_after_skip:
            x = F.relu(layer(x))
        return self.output_layer(x)


class NeuralBackgroundField(nn.Module):
    """Predicted background of a clip's key position from its feature volume.

    Args:
        channels: feature channels C (official 128).
        scene_dim, motion_dim, scene_hidden, motion_hidden: scene encoder sizes (64, 32, 128, 32).
        mlp_hidden: width of the coordinate MLP (256).
        num_frequencies: Fourier frequencies 2^0 .. 2^(F-1) (6).
        learnable_time_scale: the paper's learnable time scale alpha (a Parameter that receives
            gradients). Officially `time_scale` exists but enters through `.item()`: it is then
            stored as a buffer here.

    `forward(volume [M, C, T, h, w], frame_times [M] or None) -> background [M, C, h, w]`.
    `frame_times` None means the official constant t = 1.0.
    """

    def __init__(
        self,
        channels: int,
        *,
        scene_dim: int = 64,
        motion_dim: int = 32,
        scene_hidden: int = 128,
        motion_hidden: int = 32,
        mlp_hidden: int = 256,
        num_frequencies: int = 6,
        learnable_time_scale: bool = False,
    ):
        super().__init__()
        self.channels = channels
        self.scene_encoder = SceneEncoder(
            channels,
            scene_dim=scene_dim,
            motion_dim=motion_dim,
            scene_hidden=scene_hidden,
            motion_hidden=motion_hidden,
        )
        # 2^0 .. 2^(F-1), official `2.0 ** torch.linspace(0, F-1, F)` (exact powers of two)
        self.frequencies = tuple(2.0**k for k in range(num_frequencies))
        if learnable_time_scale:
            self.time_scale = nn.Parameter(torch.tensor(1.0))
        else:
            self.register_buffer("time_scale", torch.tensor(1.0))
        coord_dim = NUM_COORDS * (1 + 2 * num_frequencies)
        self.field = BackgroundFieldMLP(
            coord_dim, self.scene_encoder.code_dim, hidden=mlp_hidden, out_channels=channels
        )

    def coordinate_features(
        self, height: int, width: int, frame_times: torch.Tensor | None, device: torch.device
    ) -> torch.Tensor:
        """Fourier features of every pixel: `[h*w, P]` (constant t) or `[M, h*w, P]` (per clip)."""
        xy = pixel_grid(height, width, device)
        if frame_times is None:
            t = (1.0 * self.time_scale).expand(xy.shape[0], 1)
            return fourier_features(torch.cat([xy, t.to(xy.dtype)], dim=-1), self.frequencies)
        t = (frame_times.to(xy.dtype) * self.time_scale)[:, None, None]
        t = t.expand(-1, xy.shape[0], 1)
        coords = torch.cat([xy.expand(t.shape[0], -1, -1), t], dim=-1)
        return fourier_features(coords, self.frequencies)

    def forward(
        self,
        volume: torch.Tensor,
        frame_times: torch.Tensor | None = None,
        index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """`volume [M, C, T, h, w]` -> `[M, C, h, w]`; with `index [K, T]`, `volume` holds frames
        `[B, T, C, h, w]` and the volumes are their selections (`forward_frame_selections`)."""
        if index is not None:
            return self.forward_frame_selections(volume, index, frame_times)
        return self.decode(self.scene_encoder(volume), volume.shape[-2:], frame_times)

    def forward_frame_selections(
        self, frames: torch.Tensor, index: torch.Tensor, frame_times: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Backgrounds of the volumes `frames[:, index[k]]` -> `[K*B, C, h, w]` (selection-major),
        equal to `forward` on those volumes but computed by temporal taps (see
        `SceneEncoder.encode_frame_selections`). `frames [B, T, C, h, w]`, `index [K, T]`,
        `frame_times [K*B]` or None."""
        code = self.scene_encoder.encode_frame_selections(frames, index)
        return self.decode(code, frames.shape[-2:], frame_times)

    def decode(
        self, code: torch.Tensor, size: tuple[int, int], frame_times: torch.Tensor | None
    ) -> torch.Tensor:
        """Clip codes `[M, Z]` -> backgrounds `[M, C, h, w]` of size (h, w)."""
        h, w = size
        coords = self.coordinate_features(h, w, frame_times, code.device)
        background = self.field(coords, code)  # [M, h*w, C]
        return background.reshape(code.shape[0], h, w, self.channels).permute(0, 3, 1, 2)
