"""CHAL's streaming parts: the per-frame encoder and the clip head on the cached window
(`mistd.inference.streaming` says what the two parts are; `CHAL.streaming_parts` builds them).

CHAL (docs/design.md §6): besides backbone + PAFPN + fold + early fusion, the frame encoder computes
the temporal "taps" of the SNF's first Conv3d layers. A Conv3d with temporal kernel k is a sum of
k Conv2d taps, `conv3d(V)[t] = sum_d conv2d(V[t + d - k//2], W[:, :, d]) + b` (zero outside the
volume), so each frame's taps are computed once, and every padded-prefix volume of every window
is assembled by summing cached taps. Inside one window the hidden maps of the second Conv3d depend
only on which frames sit at (t-1, t, t+1): the distinct triples over the T prefix volumes are
enumerated once (16 instead of 25 at T=5) and the second Conv3d's taps run on those only. The
sums of taps are products with 0/1 selection matrices (one matrix product, not a gather per tap),
and each eval-mode BatchNorm3d is folded into the taps before it. The neural-field MLP already
splits its first and skip layers into a coordinate part and a clip-code bias
(`mistd.models.temporal.background_field.ConcatLinear`). Everything is exact algebra; only the
order of floating-point sums changes (relative error ~1e-6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:  # the model passes itself in: no import of its module here
    from mistd.models.detectors.chal import CHAL
    from mistd.models.temporal.background_field import NeuralBackgroundField

PAD = -1  # "outside the volume" (zero padding of a Conv3d)


def _conv_taps(conv: nn.Conv3d) -> torch.Tensor:
    """Conv3d weight `[O, I, k, 3, 3]` -> its k temporal taps stacked as a Conv2d weight
    `[k*O, I, 3, 3]` (tap d first)."""
    return torch.cat([conv.weight[:, :, d] for d in range(conv.weight.shape[2])], dim=0)


def _bn_scale_shift(bn: nn.BatchNorm3d, bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode `bn(x + bias)` as `x * scale + shift` (per channel, `[C]` each)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, (bias - bn.running_mean) * scale + bn.bias


def _grid_pool(x: torch.Tensor, cells: int) -> torch.Tensor:
    """`adaptive_avg_pool2d(x, cells)` for `[N, C, h, w]` with h and w multiples of `cells`, as a
    reshape + mean, which exports to ONNX with dynamic spatial sizes (adaptive pooling does not).
    The SNF pools stride-8 maps into 4 x 4 and 2 x 2 cells: inputs are multiples of 32 (the
    PAFPN's concatenations require it), so h and w always are multiples of 4."""
    n, c, h, w = x.shape
    return x.reshape(n, c, cells, h // cells, cells, w // cells).mean(dim=(3, 5))


def _distinct(keys: Sequence[tuple[int, ...]]) -> tuple[list[tuple[int, ...]], list[int]]:
    """Distinct keys (first-seen order) and, for each key, its position among them."""
    order: dict[tuple[int, ...], int] = {}
    for key in keys:
        order.setdefault(key, len(order))
    return list(order), [order[k] for k in keys]


class SNFPlan:
    """Static structure of the SNF's Conv3d work inside one window (what to sum with what).

    For the prefix volumes `volumes[e]` (frame indices per position, e over evaluations):
    `h1_keys` distinct (prev, current, next) frame triples of the first scene conv (PAD = zero),
    `h2_keys` distinct (prev, current, next) h1-item triples of the second scene conv,
    `scene_members[e]` the h2 items of evaluation e (one per position, averaged by the pooling),
    `motion_keys` distinct (current, next) frame pairs of the motion conv (temporal kernel 2, no
    temporal padding), `motion_members[e]` the pairs of evaluation e.
    """

    def __init__(self, volumes: Sequence[Sequence[int]]):
        h1_all, h2_all, motion_all = [], [], []
        for vol in volumes:
            n = len(vol)
            h1_all.append(
                [
                    (vol[i - 1] if i > 0 else PAD, vol[i], vol[i + 1] if i < n - 1 else PAD)
                    for i in range(n)
                ]
            )
            motion_all.append([(vol[i], vol[i + 1]) for i in range(n - 1)])
        self.h1_keys, h1_ids = _distinct([k for keys in h1_all for k in keys])
        n = len(volumes[0])
        h1_per_volume = [h1_ids[e * n : (e + 1) * n] for e in range(len(volumes))]
        for ids in h1_per_volume:
            h2_all.append(
                [
                    (ids[i - 1] if i > 0 else PAD, ids[i], ids[i + 1] if i < n - 1 else PAD)
                    for i in range(n)
                ]
            )
        self.h2_keys, h2_ids = _distinct([k for keys in h2_all for k in keys])
        self.scene_members = [h2_ids[e * n : (e + 1) * n] for e in range(len(volumes))]
        self.motion_keys, motion_ids = _distinct([k for keys in motion_all for k in keys])
        m = n - 1
        self.motion_members = [motion_ids[e * m : (e + 1) * m] for e in range(len(volumes))]


def _average_matrix(members: list[list[int]], num_items: int) -> torch.Tensor:
    """`[E, num_items]`: row e averages the items listed in `members[e]` (with multiplicity)."""
    matrix = torch.zeros(len(members), num_items)
    for e, ids in enumerate(members):
        for i in ids:
            matrix[e, i] += 1.0 / len(ids)
    return matrix


def _selection_matrix(rows: list[list[int]], columns: int) -> torch.Tensor:
    """`[len(rows), columns]` 0/1 matrix: row r has a one at each column listed in `rows[r]`."""
    matrix = torch.zeros(len(rows), columns)
    for r, ids in enumerate(rows):
        for column in ids:
            matrix[r, column] += 1.0
    return matrix


class StreamingBackgroundField(nn.Module):
    """The SNF evaluated from cached per-frame Conv3d taps (see module docstring).

    `taps(fused [N, C, h, w]) -> [N, 5*C/2, h, w]`: per-frame taps (3 scene-conv taps, then 2
    motion-conv taps), each conv's weights times its BatchNorm's scale, no bias (the bias and the
    BatchNorm's shift are added once the taps are summed).
    `forward(fused [B, T, C, h, w], taps [B, T, 5*C/2, h, w]) -> backgrounds [B, E, C, h, w]` for
    the evaluations `frames` given at construction (frame k's background from the repeat-padded
    prefix of frame k), equal to `field(volume of frame k's prefix)`.
    """

    def __init__(
        self,
        field: NeuralBackgroundField,
        num_frames: int,
        frames: Sequence[int],
        per_frame_time: bool = False,
    ):
        super().__init__()
        encoder = field.scene_encoder
        conv1, bn1 = encoder.scene_conv1, encoder.scene_bn1
        conv2, bn2 = encoder.scene_conv2, encoder.scene_bn2
        motion_conv, motion_bn = encoder.motion_conv, encoder.motion_bn
        if conv1.weight.shape[2] != 3 or conv2.weight.shape[2] != 3:
            raise ValueError("streaming SNF expects temporal kernel 3 in the scene convs")
        if motion_conv.weight.shape[2] != 2 or motion_conv.padding[0] != 0:
            raise ValueError("streaming SNF expects the motion conv's temporal kernel 2, pad 0")
        if motion_conv.out_channels != conv1.out_channels:
            raise ValueError("streaming SNF expects the motion and first scene convs equally wide")
        self.field = field
        self.num_frames = num_frames
        self.frames = list(frames)
        self.per_frame_time = per_frame_time
        # The paper's time coordinate of each evaluation, t = k / (T-1) (as `CHAL.backgrounds`);
        # fixed by T, so computed here rather than from the traced clip length.
        frame_times = torch.tensor(self.frames, dtype=torch.float32) / max(num_frames - 1, 1)
        self.register_buffer("frame_times", frame_times, persistent=False)
        self.hidden1 = conv1.out_channels
        self.hidden2 = conv2.out_channels
        self.motion_hidden = motion_conv.out_channels
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, bn1, conv2, bn2
        self.motion_conv, self.motion_bn = motion_conv, motion_bn
        index = torch.arange(num_frames)
        volumes = [torch.minimum(index, torch.tensor(k)).tolist() for k in self.frames]
        plan = SNFPlan(volumes)
        t = num_frames
        # Each frame's cached taps are 5 maps (scene taps 0-2, motion taps 3-4): as rows of a
        # [B, 5*T, ...] matrix, the scene conv 1 input of a distinct triple and the motion conv
        # input of a distinct pair are sums of rows (a zero-padded neighbour adds nothing).
        scene_rows = [[5 * f + d for d, f in enumerate(key) if f != PAD] for key in plan.h1_keys]
        motion_rows = [[5 * cur + 3, 5 * nxt + 4] for cur, nxt in plan.motion_keys]
        self.register_buffer("h1_select", _selection_matrix(scene_rows, 5 * t), persistent=False)
        self.register_buffer(
            "motion_select", _selection_matrix(motion_rows, 5 * t), persistent=False
        )
        # scene conv 2's taps of the distinct h1 items are rows of [B, 3*K1, ...] (tap d of item
        # i at row 3*i + d)
        k1 = len(plan.h1_keys)
        h2_rows = [[3 * i + d for d, i in enumerate(key) if i != PAD] for key in plan.h2_keys]
        self.register_buffer("h2_select", _selection_matrix(h2_rows, 3 * k1), persistent=False)
        self.register_buffer(
            "scene_average",
            _average_matrix(plan.scene_members, len(plan.h2_keys)),
            persistent=False,
        )
        self.register_buffer(
            "motion_average",
            _average_matrix(plan.motion_members, len(plan.motion_keys)),
            persistent=False,
        )
        self.plan = plan

    def taps(self, fused: torch.Tensor) -> torch.Tensor:
        # each BatchNorm's scale folded into its conv's taps (its shift is added after the sum)
        scale1, _ = _bn_scale_shift(self.bn1, self.conv1.bias)
        scale_m, _ = _bn_scale_shift(self.motion_bn, self.motion_conv.bias)
        scene = _conv_taps(self.conv1) * scale1.repeat(3)[:, None, None, None]
        motion = _conv_taps(self.motion_conv) * scale_m.repeat(2)[:, None, None, None]
        return F.conv2d(fused, torch.cat([scene, motion], dim=0), None, padding=1)

    def forward(self, fused: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = fused.shape
        c1, c2, cm = self.hidden1, self.hidden2, self.motion_hidden
        _, shift1 = _bn_scale_shift(self.bn1, self.conv1.bias)
        scale2, shift2 = _bn_scale_shift(self.bn2, self.conv2.bias)
        _, shift_m = _bn_scale_shift(self.motion_bn, self.motion_conv.bias)
        # scene conv 1 on every distinct (prev, current, next) triple: one selection product
        rows = taps.reshape(b, t * 5, c1 * h * w)  # motion taps have cm = c1 channels
        h1 = torch.matmul(self.h1_select, rows)  # [B, K1, c1*h*w]
        k1 = h1.shape[1]
        h1 = F.relu(h1.reshape(b * k1, c1, h, w) + shift1.reshape(1, c1, 1, 1))
        # scene conv 2 on the distinct hidden maps only
        weight2 = _conv_taps(self.conv2) * scale2.repeat(3)[:, None, None, None]
        tap2 = F.conv2d(h1, weight2, None, padding=1)  # [B*K1, 3*c2, h, w]
        h2 = torch.matmul(self.h2_select, tap2.reshape(b, k1 * 3, c2 * h * w))
        k2 = h2.shape[1]
        h2 = F.relu(h2.reshape(b * k2, c2, h, w) + shift2.reshape(1, c2, 1, 1))
        # AdaptiveAvgPool3d((1, 4, 4)) = mean over positions of the per-position spatial pools
        pooled = _grid_pool(h2, 4).reshape(b, k2, c2 * 16)
        scene = torch.matmul(self.scene_average, pooled)  # [B, E, c2*16]
        # motion conv (kernel 2 over time, no temporal padding)
        motion = torch.matmul(self.motion_select, rows)  # [B, Km, cm*h*w]
        km = motion.shape[1]
        motion = F.relu(motion.reshape(b * km, cm, h, w) + shift_m.reshape(1, cm, 1, 1))
        motion = _grid_pool(motion, 2).reshape(b, km, cm * 4)
        motion = torch.matmul(self.motion_average, motion)  # [B, E, cm*4]
        encoder = self.field.scene_encoder
        e = scene.shape[1]
        # evaluation-major order, as `CHAL.backgrounds` (matters only for per-frame times)
        scene = scene.transpose(0, 1).reshape(e * b, -1)
        motion = motion.transpose(0, 1).reshape(e * b, -1)
        code = torch.cat([encoder.scene_code_layers(scene), encoder.motion_code_layers(motion)], 1)
        times = None
        if self.per_frame_time:
            times = self.frame_times.to(fused.dtype).repeat_interleave(b)
        coords = self.field.coordinate_features(h, w, times, fused.device)
        background = self.field.field(coords, code)  # [E*B, h*w, C]
        background = background.reshape(e, b, h, w, c).permute(1, 0, 4, 2, 3)
        return background


class CHALFrameEncoder(nn.Module):
    """`[N, 3, H, W] -> (fused [N, C, h, w][, SNF taps [N, 5*C/2, h, w]][, C2 [N, c2, 2h, 2w]])`:
    the SNF's taps with the fast SNF, the backbone's stride-4 stage with the stride-4 level."""

    def __init__(self, model: CHAL, field: StreamingBackgroundField | None):
        super().__init__()
        self.model = model
        self.field = field

    def forward(self, frames: torch.Tensor) -> tuple[torch.Tensor, ...]:
        fused, *c2 = self.model.frame_parts(frames)
        taps = () if self.field is None else (self.field.taps(fused),)
        return (fused, *taps, *c2)


class CHALClipHead(nn.Module):
    """`fused [B, T, C, h, w][, taps [B, T, 5*C/2, h, w]][, C2 [B, T, c2, 2h, 2w]] -> head maps`
    (= `CHAL.forward`; the window's features in `CHALFrameEncoder`'s order, of which C2 is read
    for the key frame only)."""

    def __init__(self, model: CHAL, field: StreamingBackgroundField | None):
        super().__init__()
        self.model = model
        self.field = field

    def backgrounds(
        self, fused: torch.Tensor, taps: torch.Tensor | None, frames: list[int] | None
    ) -> torch.Tensor:
        if self.field is None or taps is None:
            return self.model.backgrounds(fused, frames)
        # the clip length is the model's (`CHAL.temporal`): its number, not the traced size
        wanted = list(range(self.model.num_frames)) if frames is None else list(frames)
        if wanted != self.field.frames:
            raise ValueError(f"streaming SNF built for frames {self.field.frames}, got {wanted}")
        return self.field(fused, taps)

    def forward_with_maps(
        self, fused: torch.Tensor, *rest: torch.Tensor
    ) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
        """Head maps plus the intermediate maps of `CHAL.temporal` (and `fused`)."""
        rest_list = list(rest)
        c2 = rest_list.pop()[:, -1] if self.model.stride_four is not None else None
        taps = rest_list[0] if rest_list else None
        maps = self.model.temporal(
            fused, backgrounds=lambda f, frames=None: self.backgrounds(f, taps, frames)
        )
        maps["fused"] = fused
        return self.model.head_outputs(maps["neck"], c2), maps

    def forward(self, fused: torch.Tensor, *rest: torch.Tensor) -> list[torch.Tensor]:
        return self.forward_with_maps(fused, *rest)[0]


def _chal_field(model: CHAL, fast_snf: bool) -> StreamingBackgroundField | None:
    if not fast_snf or model.background_field is None:
        return None
    t = model.num_frames
    # Which backgrounds `CHAL.temporal` asks for: every frame with HAL, the key frame without.
    frames = list(range(t)) if model.appearance_anomaly is not None else [t - 1]
    field = StreamingBackgroundField(model.background_field, t, frames, model.per_frame_time)
    # its index and averaging buffers are built on the CPU: put them where the model is (CUDA)
    return field.to(next(model.parameters()).device)


def chal_streaming_parts(model: CHAL, fast_snf: bool = True) -> tuple[nn.Module, nn.Module]:
    """`(CHALFrameEncoder, CHALClipHead)` of `model` (`fast_snf`: the SNF from cached taps)."""
    field = _chal_field(model, fast_snf)
    return CHALFrameEncoder(model, field), CHALClipHead(model, field)
