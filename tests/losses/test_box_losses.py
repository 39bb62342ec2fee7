"""IoU-family losses, focal loss and NWD on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from mistd.losses.focal import sigmoid_focal_loss
from mistd.losses.iou import box_loss, ciou_loss, giou_loss, iou_loss
from mistd.losses.nwd import normalized_wasserstein, nwd_loss

BOX = torch.tensor([[10.0, 10.0, 4.0, 4.0]])
HALF = torch.tensor([[10.0, 10.0, 2.0, 2.0]])  # same centre, quarter area
FAR = torch.tensor([[14.0, 10.0, 2.0, 2.0]])  # disjoint from `SMALL`
SMALL = torch.tensor([[10.0, 10.0, 2.0, 2.0]])


def test_iou_losses_known_values():
    assert iou_loss(BOX, BOX).item() == pytest.approx(0.0, abs=1e-6)
    assert iou_loss(BOX, HALF).item() == pytest.approx(1 - 0.25**2)
    assert ciou_loss(BOX, BOX).item() == pytest.approx(0.0, abs=1e-6)
    # same centre and aspect: CIoU = IoU
    assert ciou_loss(BOX, HALF).item() == pytest.approx(0.75)
    # disjoint: IoU 0, centre distance^2 16, enclosing box 6x2 -> diagonal^2 40
    assert ciou_loss(SMALL, FAR).item() == pytest.approx(1 + 16 / 40)
    # GIoU: enclosing area 12, union 8
    assert giou_loss(SMALL, FAR).item() == pytest.approx(1 + 4 / 12)
    assert box_loss(SMALL, FAR, "giou").item() == pytest.approx(giou_loss(SMALL, FAR).item())


def test_ciou_aspect_term():
    wide = torch.tensor([[10.0, 10.0, 8.0, 2.0]])
    square = torch.tensor([[10.0, 10.0, 4.0, 4.0]])
    iou = 8 / 24  # intersection 4x2, union 16 + 16 - 8
    v = 4 / math.pi**2 * (math.atan(4.0) - math.atan(1.0)) ** 2
    alpha = v / (1 - iou + v)
    assert ciou_loss(wide, square).item() == pytest.approx(1 - (iou - alpha * v), rel=1e-5)


def test_focal_loss_torchvision_form():
    logits = torch.zeros(3)
    targets = torch.tensor([1.0, 0.0, 0.5])
    loss = sigmoid_focal_loss(logits, targets)
    ln2 = math.log(2)
    assert loss.tolist() == pytest.approx([0.25 * 0.25 * ln2, 0.75 * 0.25 * ln2, 0.5 * 0.25 * ln2])
    # confident and right -> near zero; confident and wrong -> large
    assert sigmoid_focal_loss(torch.tensor([8.0]), torch.tensor([1.0])).item() < 1e-6
    assert sigmoid_focal_loss(torch.tensor([-8.0]), torch.tensor([1.0])).item() > 1.0


def test_nwd_known_values():
    assert normalized_wasserstein(BOX, BOX).item() == pytest.approx(1.0, abs=1e-4)
    shifted = BOX + torch.tensor([[12.0, 0.0, 0.0, 0.0]])
    assert normalized_wasserstein(BOX, shifted).item() == pytest.approx(math.exp(-1), rel=1e-5)
    wider = BOX + torch.tensor([[0.0, 0.0, 24.0, 0.0]])  # W2^2 = 24^2 / 4 = 144
    assert normalized_wasserstein(BOX, wider).item() == pytest.approx(math.exp(-1), rel=1e-5)
    assert nwd_loss(BOX, shifted, constant=6.0).item() == pytest.approx(1 - math.exp(-2), rel=1e-5)


def test_losses_have_finite_gradients_for_tiny_boxes():
    pred = torch.tensor([[10.0, 10.0, 0.5, 0.5], [30.0, 30.0, 3.0, 1.0]], requires_grad=True)
    target = torch.tensor([[10.5, 10.0, 0.5, 0.5], [0.0, 0.0, 2.0, 2.0]])
    for loss in (iou_loss, giou_loss, ciou_loss, nwd_loss):
        (grad,) = torch.autograd.grad(loss(pred, target).sum(), pred)
        assert torch.isfinite(grad).all()
