"""Box operations in torch (no torchvision): conversions, IoU, class-aware NMS (`mistd.boxes`),
and the post-processing that turns decoded head outputs into `Detections`.
"""

from __future__ import annotations

import numpy as np
import torch

from mistd.boxes import batched_nms as boxes_batched_nms
from mistd.boxes import nms as boxes_nms
from mistd.structures import Detections
from mistd.thresholds import DECODE_FLOOR


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """`[..., 4]` (cx, cy, w, h) -> (x1, y1, x2, y2)."""
    xy, wh = boxes[..., :2], boxes[..., 2:4]
    return torch.cat([xy - wh / 2, xy + wh / 2], dim=-1)


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """`[..., 4]` (x1, y1, x2, y2) -> (cx, cy, w, h)."""
    p1, p2 = boxes[..., :2], boxes[..., 2:4]
    return torch.cat([(p1 + p2) / 2, p2 - p1], dim=-1)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of `[..., 4]` xyxy boxes (0 for degenerate boxes)."""
    wh = (boxes[..., 2:4] - boxes[..., :2]).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Pairwise IoU of xyxy boxes `[N, 4]` x `[M, 4]` -> `[N, M]` (0 where the union is empty)."""
    top_left = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = torch.min(boxes1[:, None, 2:4], boxes2[None, :, 2:4])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(boxes1)[:, None] + box_area(boxes2)[None, :] - inter
    return inter / union.clamp(min=eps)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float = 0.65) -> torch.Tensor:
    """Greedy NMS on xyxy boxes `[N, 4]`; returns kept indices `[K]` (on the boxes' device),
    highest score first. A box is suppressed when its IoU with a kept, higher-scored box is
    > `iou_threshold` (torchvision semantics). Runs `mistd.boxes.nms` on the CPU."""
    keep = boxes_nms(_numpy(boxes), _numpy(scores), iou_threshold)
    return torch.from_numpy(keep).to(boxes.device)


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float = 0.65
) -> torch.Tensor:
    """Class-aware NMS: boxes of different labels never suppress each other. Returns kept
    indices sorted by descending score (`mistd.boxes.batched_nms`)."""
    keep = boxes_batched_nms(_numpy(boxes), _numpy(scores), _numpy(labels), iou_threshold)
    return torch.from_numpy(keep).to(boxes.device)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor as a CPU numpy array (floating point as float32)."""
    tensor = tensor.detach()
    if tensor.is_floating_point():
        tensor = tensor.float()
    return tensor.cpu().numpy()


def postprocess(
    decoded: torch.Tensor,
    decode_floor: float = DECODE_FLOOR,
    nms_iou: float = 0.65,
    max_candidates: int = 1000,
    max_detections: int | None = None,
) -> list[Detections]:
    """Decoded head outputs -> one `Detections` per image (boxes xyxy in input pixels).

    As the official `utils_bbox.non_max_suppression`: each anchor keeps its best class,
    score = obj * cls_conf, anchors with score >= `decode_floor` are kept, then class-aware
    NMS at `nms_iou`. Unlike the official code, only the `max_candidates` highest-scored anchors
    enter NMS (bounds its time; at 512x512 stride 8 there are 4096 anchors).

    Args:
        decoded: `[B, A, 5 + C]` (cx, cy, w, h, obj prob, cls probs) from `decode_outputs`.
        max_detections: keep at most this many after NMS (None = all).
    """
    results = []
    for pred in decoded:
        cls_conf, cls_idx = pred[:, 5:].max(dim=1)
        scores = pred[:, 4] * cls_conf
        keep = scores >= decode_floor
        boxes, scores, labels = cxcywh_to_xyxy(pred[keep, :4]), scores[keep], cls_idx[keep]
        if scores.shape[0] > max_candidates:
            top = torch.topk(scores, max_candidates).indices
            boxes, scores, labels = boxes[top], scores[top], labels[top]
        kept = batched_nms(boxes, scores, labels, nms_iou)
        if max_detections is not None:
            kept = kept[:max_detections]
        results.append(
            Detections(
                boxes=boxes[kept].float(), scores=scores[kept].float(), labels=labels[kept].long()
            )
        )
    return results
