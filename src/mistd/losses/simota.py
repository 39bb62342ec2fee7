"""SimOTA label assignment (YOLOX, Ge et al. 2021) as the official CHAL code computes it
(`nets/yolo_training.py::YOLOLoss.get_assignments / get_in_boxes_info / dynamic_k_matching`).

Per image:
1. Candidate anchors: anchor centre `(grid + 0.5) * stride` strictly inside some target box, or
   within `center_radius` strides of some target centre (union over targets).
2. Cost per (target, candidate): `BCE(sqrt(sigmoid(cls) * sigmoid(obj)), one_hot)` summed over
   classes + `iou_weight * -log(IoU + 1e-8)` + `outside_cost` unless the anchor is both inside
   that target's box AND within its centre radius.
3. Dynamic k per target: `max(1, int(sum of its top-`candidate_topk` IoUs))`; the k cheapest
   candidates are matched. An anchor matched to several targets keeps the cheapest one.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class Assignment:
    """Result of assigning one image's anchors to its targets.

    Attributes:
        fg_mask: `[A]` bool, anchors assigned to a target (foreground).
        matched_gt: `[F]` int64, index of the target of each foreground anchor (F = fg count).
        matched_ious: `[F]` IoU between each foreground anchor's predicted box and its target.
    """

    fg_mask: torch.Tensor
    matched_gt: torch.Tensor
    matched_ious: torch.Tensor

    @property
    def num_fg(self) -> int:
        return int(self.matched_gt.shape[0])


def pairwise_iou_cxcywh(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of cxcywh boxes `[N, 4]` x `[M, 4]` -> `[N, M]` (official `bboxes_iou(xyxy=False)`)."""
    tl = torch.max(boxes1[:, None, :2] - boxes1[:, None, 2:] / 2, boxes2[:, :2] - boxes2[:, 2:] / 2)
    br = torch.min(boxes1[:, None, :2] + boxes1[:, None, 2:] / 2, boxes2[:, :2] + boxes2[:, 2:] / 2)
    wh = (br - tl).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    area1 = boxes1[:, 2] * boxes1[:, 3]
    area2 = boxes2[:, 2] * boxes2[:, 3]
    # The tiny floor only guards degenerate (zero-area) pairs; real pairs match the official value.
    return inter / (area1[:, None] + area2[None, :] - inter).clamp(min=1e-12)


class SimOTAAssigner:
    """SimOTA assignment (see module docstring).

    Args:
        num_classes: number of classes of the classification output.
        center_radius: radius of the centre prior, in strides (official 2.5).
        iou_weight: weight of the `-log IoU` cost (official 3.0).
        candidate_topk: IoUs summed for the dynamic k (official 10).
        outside_cost: cost added outside the box-and-centre region (official 1e5).
    """

    def __init__(
        self,
        *,
        num_classes: int,
        center_radius: float = 2.5,
        iou_weight: float = 3.0,
        candidate_topk: int = 10,
        outside_cost: float = 1e5,
    ):
        self.num_classes = num_classes
        self.center_radius = center_radius
        self.iou_weight = iou_weight
        self.candidate_topk = candidate_topk
        self.outside_cost = outside_cost

    @torch.no_grad()
    def assign(
        self,
        *,
        pred_boxes: torch.Tensor,
        cls_logits: torch.Tensor,
        obj_logits: torch.Tensor,
        anchor_centres: torch.Tensor,
        anchor_strides: torch.Tensor,
        gt_boxes: torch.Tensor,
        gt_labels: torch.Tensor,
    ) -> Assignment:
        """Assign anchors of one image.

        Args:
            pred_boxes: `[A, 4]` decoded predicted boxes, cxcywh input pixels.
            cls_logits: `[A, C]`; obj_logits: `[A]` or `[A, 1]`.
            anchor_centres: `[A, 2]` anchor centres `(grid + 0.5) * stride` in input pixels.
            anchor_strides: `[A]`.
            gt_boxes: `[G, 4]` cxcywh input pixels; gt_labels: `[G]` 0-based class ids.
        """
        device = pred_boxes.device
        num_anchors = pred_boxes.shape[0]
        num_gt = gt_boxes.shape[0]
        none = Assignment(
            fg_mask=torch.zeros(num_anchors, dtype=torch.bool, device=device),
            matched_gt=torch.zeros(0, dtype=torch.int64, device=device),
            matched_ious=pred_boxes.new_zeros(0),
        )
        if num_gt == 0:
            return none
        # Non-finite predictions (a diverged model) have no meaningful cost; the BCE below would
        # raise on them. Nothing is assigned: the loss itself is non-finite and the step skipped.
        if not all(bool(torch.isfinite(t).all()) for t in (pred_boxes, cls_logits, obj_logits)):
            return none
        gt_boxes = gt_boxes.float()
        in_box, in_centre = self._geometry(gt_boxes, anchor_centres.float(), anchor_strides.float())
        candidates = (in_box | in_centre).any(dim=0)  # [A]
        if not bool(candidates.any()):
            return none
        in_box_and_centre = (in_box & in_centre)[:, candidates]  # [G, K]
        boxes = pred_boxes[candidates].float()
        ious = pairwise_iou_cxcywh(gt_boxes, boxes)  # [G, K]
        iou_cost = -torch.log(ious + 1e-8)

        scores = (
            cls_logits[candidates].float().sigmoid()
            * obj_logits.reshape(-1, 1)[candidates].float().sigmoid()
        )  # [K, C]
        one_hot = F.one_hot(gt_labels.long(), self.num_classes).float()  # [G, C]
        # in fp32 also under autocast, which refuses binary_cross_entropy on CUDA (the scores are
        # probabilities here, not logits: this is a cost, no gradient flows through it)
        with torch.autocast(device.type, enabled=False):
            cls_cost = F.binary_cross_entropy(
                scores.sqrt()[None].expand(num_gt, -1, -1),
                one_hot[:, None, :].expand(-1, scores.shape[0], -1),
                reduction="none",
            ).sum(dim=-1)  # [G, K]
        cost = cls_cost + self.iou_weight * iou_cost + self.outside_cost * (~in_box_and_centre)

        matching = self._dynamic_k(cost, ious)  # [G, K] bool
        matched_candidates = matching.any(dim=0)  # [K]
        fg_mask = candidates.clone()
        fg_mask[candidates] = matched_candidates
        matched_gt = matching[:, matched_candidates].float().argmax(dim=0)
        matched_ious = (matching * ious).sum(dim=0)[matched_candidates]
        return Assignment(fg_mask=fg_mask, matched_gt=matched_gt, matched_ious=matched_ious)

    def _geometry(
        self, gt_boxes: torch.Tensor, centres: torch.Tensor, strides: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`[G, A]` masks: anchor centre strictly inside the box / inside the centre square."""
        x, y = centres[None, :, 0], centres[None, :, 1]
        cx, cy = gt_boxes[:, 0:1], gt_boxes[:, 1:2]
        half_w, half_h = gt_boxes[:, 2:3] / 2, gt_boxes[:, 3:4] / 2
        box_deltas = torch.stack(
            [x - (cx - half_w), y - (cy - half_h), cx + half_w - x, cy + half_h - y]
        )
        in_box = box_deltas.min(dim=0).values > 0.0
        radius = self.center_radius * strides[None, :]
        centre_deltas = torch.stack(
            [x - (cx - radius), y - (cy - radius), cx + radius - x, cy + radius - y]
        )
        in_centre = centre_deltas.min(dim=0).values > 0.0
        return in_box, in_centre

    def _dynamic_k(self, cost: torch.Tensor, ious: torch.Tensor) -> torch.Tensor:
        """`[G, K]` bool matching: each target takes its k cheapest candidates, conflicts go to
        the cheapest target (evaluated over all targets, as the official code does)."""
        num_gt, num_candidates = cost.shape
        topk = min(self.candidate_topk, num_candidates)
        dynamic_k = ious.topk(topk, dim=1).values.sum(dim=1).int().clamp(min=1)  # [G]
        # rank of each candidate in its target's cost order: matched iff rank < k.
        order = cost.argsort(dim=1, stable=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(
            1, order, torch.arange(num_candidates, device=cost.device).expand(num_gt, -1)
        )
        matching = ranks < dynamic_k[:, None]
        shared = matching.sum(dim=0) > 1
        if bool(shared.any()):
            cheapest = cost[:, shared].argmin(dim=0)
            matching[:, shared] = False
            matching[cheapest, shared.nonzero(as_tuple=True)[0]] = True
        return matching
