"""Box conversions, IoU, NMS (against a brute-force reference) and post-processing."""

from __future__ import annotations

import pytest
import torch

from mistd.models.ops import (
    batched_nms,
    box_iou,
    cxcywh_to_xyxy,
    nms,
    postprocess,
    xyxy_to_cxcywh,
)


def test_conversions_round_trip():
    boxes = torch.tensor([[10.0, 20.0, 4.0, 6.0], [0.0, 0.0, 1.0, 1.0]])
    xyxy = cxcywh_to_xyxy(boxes)
    assert xyxy[0].tolist() == [8.0, 17.0, 12.0, 23.0]
    assert torch.allclose(xyxy_to_cxcywh(xyxy), boxes)


def test_box_iou_known_values():
    a = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    b = torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 0.0, 15.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    iou = box_iou(a, b)
    assert iou.shape == (1, 3)
    assert iou[0].tolist() == pytest.approx([1.0, 50 / 150, 0.0])
    degenerate = torch.tensor([[3.0, 3.0, 3.0, 3.0]])
    assert box_iou(degenerate, degenerate).item() == 0.0


def _reference_nms(boxes, scores, threshold):
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep = []
    for i in order:
        if all(box_iou(boxes[i : i + 1], boxes[j : j + 1]).item() <= threshold for j in keep):
            keep.append(i)
    return keep


def test_nms_matches_brute_force_reference():
    generator = torch.Generator().manual_seed(0)
    xy = torch.rand(60, 2, generator=generator) * 50
    wh = torch.rand(60, 2, generator=generator) * 20 + 2
    boxes = torch.cat([xy, xy + wh], dim=1)
    scores = torch.rand(60, generator=generator)
    for threshold in (0.3, 0.65):
        assert nms(boxes, scores, threshold).tolist() == _reference_nms(boxes, scores, threshold)


def test_nms_empty_and_class_aware():
    assert nms(torch.zeros(0, 4), torch.zeros(0)).shape == (0,)
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 0.0, 11.0, 10.0]])
    scores = torch.tensor([0.9, 0.8])
    assert nms(boxes, scores, 0.65).tolist() == [0]
    assert batched_nms(boxes, scores, torch.tensor([0, 1]), 0.65).tolist() == [0, 1]
    assert batched_nms(boxes, scores, torch.tensor([1, 1]), 0.65).tolist() == [0]


def test_postprocess_scores_threshold_and_classes():
    # anchors: (cx, cy, w, h, obj, cls0, cls1)
    decoded = torch.tensor(
        [
            [
                [10.0, 10.0, 4.0, 4.0, 0.9, 0.2, 0.8],  # score .72 class 1
                [10.5, 10.0, 4.0, 4.0, 0.9, 0.1, 0.7],  # overlaps the first, suppressed
                [40.0, 40.0, 6.0, 2.0, 0.5, 0.4, 0.1],  # score .20 class 0
                [60.0, 60.0, 4.0, 4.0, 0.01, 0.05, 0.0],  # score .0005 < .001
            ]
        ]
    )
    (dets,) = postprocess(decoded, decode_floor=0.001, nms_iou=0.65)
    assert dets.scores.tolist() == pytest.approx([0.72, 0.20])
    assert dets.labels.tolist() == [1, 0]
    assert dets.boxes[0].tolist() == pytest.approx([8.0, 8.0, 12.0, 12.0])
    (high,) = postprocess(decoded, decode_floor=0.5)
    assert len(high) == 1


def test_postprocess_caps_candidates_and_handles_empty():
    decoded = torch.zeros(2, 3000, 6)
    decoded[0, :, :2] = torch.arange(3000.0)[:, None] * 10  # disjoint boxes
    decoded[0, :, 2:4] = 4.0
    decoded[0, :, 4] = torch.linspace(0.1, 0.9, 3000)
    decoded[0, :, 5] = 1.0
    first, second = postprocess(decoded, max_candidates=100)
    assert len(first) == 100
    assert first.scores[0].item() == pytest.approx(0.9)
    assert len(second) == 0 and second.boxes.shape == (0, 4)
