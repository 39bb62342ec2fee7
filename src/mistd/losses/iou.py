"""IoU-family box losses on aligned box pairs in `cxcywh` (the criterion's box format).

Formulas follow the official CHAL `nets/yolo_training.py::IOUloss` (itself YOLOX's), including its
epsilons, so that training reproduces the official losses: IoU uses `inter / (union + 1e-16)`;
CIoU divides the centre distance by `clamp(enclosing diagonal^2, 1e-6)` and its aspect term
alpha is NOT detached (the official code lets gradient flow through it).
"""

from __future__ import annotations

import math
from typing import Literal

import torch

BoxLossKind = Literal["iou", "giou", "ciou"]


def _corners(boxes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return boxes[..., :2] - boxes[..., 2:4] / 2, boxes[..., :2] + boxes[..., 2:4] / 2


def aligned_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of `[N, 4]` cxcywh boxes -> `[N]`."""
    p1, p2 = _corners(pred)
    t1, t2 = _corners(target)
    wh = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = pred[:, 2] * pred[:, 3] + target[:, 2] * target[:, 3] - inter
    return inter / (union + 1e-16)


def iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """YOLOX IoU loss `1 - IoU^2` per pair, `[N, 4]` cxcywh -> `[N]`."""
    return 1 - aligned_iou(pred, target) ** 2


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`1 - GIoU` per pair, `[N, 4]` cxcywh -> `[N]`."""
    p1, p2 = _corners(pred)
    t1, t2 = _corners(target)
    wh = (torch.min(p2, t2) - torch.max(p1, t1)).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    union = pred[:, 2] * pred[:, 3] + target[:, 2] * target[:, 3] - inter
    iou = inter / (union + 1e-16)
    enclose = torch.max(p2, t2) - torch.min(p1, t1)
    area_c = enclose[:, 0] * enclose[:, 1]
    giou = iou - (area_c - union) / area_c.clamp(min=1e-16)
    return 1 - giou.clamp(min=-1.0, max=1.0)


def ciou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """`1 - CIoU` per pair (Zheng et al. 2020), `[N, 4]` cxcywh -> `[N]`.

    CIoU = IoU - d^2 / c^2 - alpha * v, with d the centre distance, c the enclosing box diagonal,
    v = 4/pi^2 (atan(w_t/h_t) - atan(w_p/h_p))^2 and alpha = v / (1 - IoU + v).
    """
    iou = aligned_iou(pred, target)
    p1, p2 = _corners(pred)
    t1, t2 = _corners(target)
    centre_distance = ((pred[:, :2] - target[:, :2]) ** 2).sum(dim=-1)
    enclose = (torch.max(p2, t2) - torch.min(p1, t1)).clamp(min=0)
    diagonal = (enclose**2).sum(dim=-1)
    ciou = iou - centre_distance / diagonal.clamp(min=1e-6)
    v = (4 / math.pi**2) * (
        torch.atan(pred[:, 2] / pred[:, 3].clamp(min=1e-6))
        - torch.atan(target[:, 2] / target[:, 3].clamp(min=1e-6))
    ) ** 2
    alpha = v / (1.0 - iou + v).clamp(min=1e-6)
    ciou = ciou - alpha * v
    return 1 - ciou.clamp(min=-1.0, max=1.0)


BOX_LOSSES = {"iou": iou_loss, "giou": giou_loss, "ciou": ciou_loss}


def box_loss(pred: torch.Tensor, target: torch.Tensor, kind: BoxLossKind = "ciou") -> torch.Tensor:
    """Per-pair IoU-family loss of `kind` on `[N, 4]` cxcywh boxes -> `[N]`."""
    return BOX_LOSSES[kind](pred.reshape(-1, 4), target.reshape(-1, 4))
