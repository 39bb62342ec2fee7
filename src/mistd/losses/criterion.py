"""YOLOX-style detection criterion with the official CHAL recipe (docs/design.md §4.2).

Verified against the official `nets/yolo_training.py::YOLOLoss.get_losses`:
- assignment: SimOTA (`mistd.losses.simota`), targets are (cls, cx, cy, w, h) input pixels;
- obj: sigmoid focal loss (alpha .25, gamma 2, torchvision form) summed over ALL anchors, target
  1 on foreground anchors;
- cls: sigmoid focal loss summed over foreground anchors, target = one_hot(class) * IoU of the
  anchor's predicted box with its target (IoU-soft one-hot);
- reg: `nwd_weight * mean(1 - NWD) + ciou_weight * sum(1 - CIoU)` over foreground anchors, on the
  decoded boxes (cxcywh, input pixels);
- total = (reg_weight * reg + obj_weight * obj + cls_weight * cls) / max(num_fg, 1), num_fg summed
  over the batch. Note the NWD term is a mean that is divided by num_fg again, as officially.

One deliberate difference: with no foreground anchor in the whole batch the official code uses a
constant `1.0` as the NWD term (adding a gradient-free 4 * 0.5 = 2.0 to the loss); here it is 0, so
an empty batch's loss is its objectness loss only. Gradients are identical.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mistd.decoding import decode_boxes, flatten_outputs, make_grids
from mistd.losses.focal import sigmoid_focal_loss
from mistd.losses.iou import BoxLossKind, box_loss
from mistd.losses.nwd import nwd_loss
from mistd.losses.simota import SimOTAAssigner


class YOLOXCriterion:
    """Assignment + loss for YOLOX-head outputs.

    Args:
        num_classes: classes of the head.
        strides: stride of each head level (finest first), as the head's `strides`.
        reg_weight, obj_weight, cls_weight: weights of the three terms in the total.
        nwd_weight, ciou_weight: mix of the regression term (`ciou_weight` weighs whichever
            IoU-family loss `box_loss` selects; CHAL paper preset: nwd 1, ciou 0).
        box_loss: `ciou` (official), `giou`, or `iou` (YOLOX's `1 - IoU^2`).
        use_focal: focal loss for obj/cls (official CHAL); False = plain BCE (YOLOX).
        focal_alpha, focal_gamma: focal parameters.
        nwd_constant: NWD normalising constant C (official 12).
        center_radius, iou_cost_weight, candidate_topk: SimOTA parameters.

    `__call__(outputs, targets) -> {"total", "reg", "obj", "cls", "num_fg"}`; `reg`, `obj`, `cls`
    are the unweighted terms divided by num_fg, so
    `total = reg_weight * reg + obj_weight * obj + cls_weight * cls`.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        strides: tuple[int, ...],
        reg_weight: float = 4.0,
        obj_weight: float = 1.0,
        cls_weight: float = 1.2,
        nwd_weight: float = 0.5,
        ciou_weight: float = 0.5,
        box_loss: BoxLossKind = "ciou",
        use_focal: bool = True,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        nwd_constant: float = 12.0,
        center_radius: float = 2.5,
        iou_cost_weight: float = 3.0,
        candidate_topk: int = 10,
    ):
        self.num_classes = num_classes
        self.strides = tuple(strides)
        self.reg_weight = reg_weight
        self.obj_weight = obj_weight
        self.cls_weight = cls_weight
        self.nwd_weight = nwd_weight
        self.ciou_weight = ciou_weight
        self.box_loss = box_loss
        self.use_focal = use_focal
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.nwd_constant = nwd_constant
        self.assigner = SimOTAAssigner(
            num_classes=num_classes,
            center_radius=center_radius,
            iou_weight=iou_cost_weight,
            candidate_topk=candidate_topk,
        )

    def _binary_loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.use_focal:
            return sigmoid_focal_loss(logits, targets, self.focal_alpha, self.focal_gamma)
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")

    def __call__(
        self, outputs: list[torch.Tensor], targets: list[torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Loss of raw head maps.

        Args:
            outputs: per level `[B, 5 + C, H_i, W_i]` raw maps (reg x, y, w, h, obj, cls).
            targets: per image `[N_i, 5]` (cls, cx, cy, w, h) in input pixels (N_i may be 0).
        """
        if len(outputs) != len(self.strides):
            raise ValueError(f"{len(outputs)} output levels but strides {self.strides}")
        if len(targets) != outputs[0].shape[0]:
            raise ValueError(f"{len(targets)} target tensors for a batch of {outputs[0].shape[0]}")
        flat = flatten_outputs(outputs).float()  # [B, A, 5 + C]
        if not bool(torch.isfinite(flat.detach()).all()):
            # A diverged model: no assignment is possible. A NaN loss that keeps the graph lets
            # the trainer's non-finite handling skip the step (and stop after too many).
            nan = flat.sum() * float("nan")
            zero = torch.zeros((), device=flat.device)
            return {
                "total": nan,
                "reg": nan.detach(),
                "obj": nan.detach(),
                "cls": nan.detach(),
                "num_fg": zero,
            }
        grid, stride = make_grids(outputs, self.strides)
        grid, stride = grid.float(), stride.float()
        boxes = decode_boxes(flat[..., :4], grid, stride)  # [B, A, 4] cxcywh
        obj_logits = flat[..., 4]
        cls_logits = flat[..., 5:]
        centres = (grid + 0.5) * stride[:, None]

        obj_targets = torch.zeros_like(obj_logits)
        fg_boxes, fg_targets, fg_cls_logits, cls_targets = [], [], [], []
        for b, target in enumerate(targets):
            target = target.reshape(-1, 5).to(flat.device, torch.float32)
            assignment = self.assigner.assign(
                pred_boxes=boxes[b].detach(),
                cls_logits=cls_logits[b].detach(),
                obj_logits=obj_logits[b].detach(),
                anchor_centres=centres,
                anchor_strides=stride,
                gt_boxes=target[:, 1:5],
                gt_labels=target[:, 0].long(),
            )
            fg = assignment.fg_mask
            obj_targets[b, fg] = 1.0
            fg_boxes.append(boxes[b, fg])
            fg_targets.append(target[assignment.matched_gt, 1:5])
            fg_cls_logits.append(cls_logits[b, fg])
            labels = target[assignment.matched_gt, 0].long()
            cls_targets.append(
                F.one_hot(labels, self.num_classes).float() * assignment.matched_ious[:, None]
            )
        fg_boxes_t = torch.cat(fg_boxes)
        fg_targets_t = torch.cat(fg_targets)
        num_fg = fg_boxes_t.shape[0]
        normaliser = max(num_fg, 1)

        obj = self._binary_loss(obj_logits, obj_targets).sum()
        cls = self._binary_loss(torch.cat(fg_cls_logits), torch.cat(cls_targets)).sum()
        iou_term = box_loss(fg_boxes_t, fg_targets_t, self.box_loss).sum()
        nwd_term = nwd_loss(fg_boxes_t, fg_targets_t, self.nwd_constant)
        # mean over an empty set is NaN; with no foreground the regression term is 0.
        nwd_term = nwd_term.mean() if num_fg > 0 else nwd_term.sum()
        reg = self.nwd_weight * nwd_term + self.ciou_weight * iou_term

        reg, obj, cls = reg / normaliser, obj / normaliser, cls / normaliser
        total = self.reg_weight * reg + self.obj_weight * obj + self.cls_weight * cls
        return {
            "total": total,
            "reg": reg.detach(),
            "obj": obj.detach(),
            "cls": cls.detach(),
            "num_fg": torch.tensor(float(num_fg), device=total.device),
        }
