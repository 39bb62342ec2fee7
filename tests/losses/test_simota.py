"""SimOTA assignment: candidates, dynamic k, conflicts, empty and out-of-image targets."""

from __future__ import annotations

import math

import torch

from mistd.losses.simota import SimOTAAssigner, pairwise_iou_cxcywh


def _anchors(size: int = 64, stride: int = 8):
    n = size // stride
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    grid = torch.stack([xs, ys], dim=-1).reshape(-1, 2).float()
    strides = torch.full((n * n,), float(stride))
    return grid, strides


def _assign(gt_boxes, pred_boxes=None, labels=None, num_classes=1):
    grid, strides = _anchors()
    centres = (grid + 0.5) * strides[:, None]
    if pred_boxes is None:  # every anchor predicts an 8x8 box at its centre
        pred_boxes = torch.cat([centres, torch.full_like(centres, 8.0)], dim=1)
    n = pred_boxes.shape[0]
    if labels is None:
        labels = torch.zeros(gt_boxes.shape[0], dtype=torch.int64)
    return SimOTAAssigner(num_classes=num_classes).assign(
        pred_boxes=pred_boxes,
        cls_logits=torch.zeros(n, num_classes),
        obj_logits=torch.zeros(n),
        anchor_centres=centres,
        anchor_strides=strides,
        gt_boxes=gt_boxes,
        gt_labels=labels,
    ), centres


def test_empty_targets_assign_nothing():
    result, _ = _assign(torch.zeros(0, 4))
    assert result.num_fg == 0 and not result.fg_mask.any() and result.fg_mask.shape == (64,)


def test_single_target_takes_its_best_anchor():
    gt = torch.tensor([[28.0, 36.0, 8.0, 8.0]])  # exactly anchor (3, 4)'s predicted box
    result, centres = _assign(gt)
    # top-10 IoU sum is 1 + small overlaps -> k = 1: only the perfect anchor
    assert result.num_fg == 1
    (index,) = result.fg_mask.nonzero(as_tuple=True)[0].tolist()
    assert centres[index].tolist() == [28.0, 36.0]
    assert result.matched_gt.tolist() == [0]
    assert result.matched_ious.tolist() == [1.0]


def test_dynamic_k_grows_with_iou_and_respects_the_centre_region():
    gt = torch.tensor([[32.0, 32.0, 24.0, 24.0]])
    grid, strides = _anchors()
    centres = (grid + 0.5) * strides[:, None]
    preds = torch.cat([centres, torch.full_like(centres, 24.0)], dim=1)
    result, _ = _assign(gt, pred_boxes=preds)
    ious = pairwise_iou_cxcywh(gt, preds)[0]
    expected_k = max(1, int(ious.topk(10).values.sum()))
    assert result.num_fg == expected_k > 1
    fg_centres = centres[result.fg_mask]
    assert ((fg_centres - gt[:, :2]).abs() < 2.5 * 8).all()  # inside the centre square
    assert ((fg_centres - gt[:, :2]).abs() < 12).all()  # inside the box


def test_conflicts_go_to_the_cheapest_target():
    assigner = SimOTAAssigner(num_classes=1)
    cost = torch.tensor([[1.0, 2.0], [0.5, 3.0]])
    matching = assigner._dynamic_k(cost, torch.ones(2, 2))  # k = 2 for both targets
    assert matching.tolist() == [[False, True], [True, False]]
    cost = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    ious = torch.tensor([[0.6, 0.5, 0.3, 0.1]])  # sum 1.5 -> k = 1
    assert assigner._dynamic_k(cost, ious).tolist() == [[False, False, False, True]]


def test_two_targets_each_anchor_has_one_target():
    gt = torch.tensor([[20.0, 20.0, 16.0, 16.0], [28.0, 20.0, 16.0, 16.0]])
    result, _ = _assign(gt, labels=torch.tensor([0, 1]), num_classes=2)
    assert result.num_fg >= 2
    assert set(result.matched_gt.tolist()) == {0, 1}
    assert result.matched_gt.shape == result.matched_ious.shape == (result.num_fg,)


def test_targets_outside_the_image():
    far = torch.tensor([[500.0, 500.0, 8.0, 8.0]])  # no anchor near it
    result, _ = _assign(far)
    assert result.num_fg == 0
    partly = torch.tensor([[-2.0, 30.0, 10.0, 8.0]])  # centre left of the image
    result, centres = _assign(partly)
    assert result.num_fg >= 1
    assert all(math.isfinite(v) for v in result.matched_ious.tolist())
    assert (centres[result.fg_mask][:, 0] < 2.5 * 8).all()
