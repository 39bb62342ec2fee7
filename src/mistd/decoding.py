"""Decoding of YOLOX head maps: anchor-point grids, flattening, boxes in input pixels.

Shared by the models (`predict`), the losses (assignment on decoded boxes) and streaming inference,
so it sits below all three: it imports torch only.
"""

from __future__ import annotations

import torch


def make_grids(
    outputs: list[torch.Tensor], strides: tuple[int, ...] | list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Anchor-point grid of the flattened outputs.

    Returns `grid [A, 2]` (x, y cell indices) and `stride [A]`, A = sum of H_i * W_i, in the
    order of `flatten_outputs` (level by level, row-major).
    """
    grids, stride_list = [], []
    for out, stride in zip(outputs, strides, strict=True):
        h, w = out.shape[-2:]
        ys = torch.arange(h, device=out.device, dtype=out.dtype)
        xs = torch.arange(w, device=out.device, dtype=out.dtype)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grids.append(torch.stack((gx, gy), dim=-1).reshape(-1, 2))
        stride_list.append(torch.full((h * w,), float(stride), device=out.device, dtype=out.dtype))
    return torch.cat(grids, dim=0), torch.cat(stride_list, dim=0)


def flatten_outputs(outputs: list[torch.Tensor]) -> torch.Tensor:
    """Per-level `[B, K, H_i, W_i]` -> `[B, A, K]` (level by level, row-major)."""
    return torch.cat([o.flatten(start_dim=2) for o in outputs], dim=2).permute(0, 2, 1)


def decode_boxes(raw: torch.Tensor, grid: torch.Tensor, stride: torch.Tensor) -> torch.Tensor:
    """Raw box offsets `[..., A, 4]` -> `cxcywh` input pixels: xy = (p + grid) * stride,
    wh = exp(p) * stride (official `utils_bbox.decode_outputs`)."""
    stride = stride.unsqueeze(-1)
    xy = (raw[..., :2] + grid) * stride
    wh = torch.exp(raw[..., 2:4]) * stride
    return torch.cat([xy, wh], dim=-1)


def decode_outputs(
    outputs: list[torch.Tensor], strides: tuple[int, ...] | list[int]
) -> torch.Tensor:
    """Raw head maps -> `[B, A, 5 + C]`: (cx, cy, w, h) in input pixels, sigmoid(obj),
    sigmoid(cls). The final score of class c is `obj * cls_c` (`mistd.models.ops.postprocess`)."""
    flat = flatten_outputs(outputs)
    grid, stride = make_grids(outputs, strides)
    boxes = decode_boxes(flat[..., :4], grid, stride)
    return torch.cat([boxes, flat[..., 4:].sigmoid()], dim=-1)
