"""YOLOXCriterion: empty / single / out-of-image / mixed targets, gradients, official value."""

from __future__ import annotations

import math

import pytest
import torch

from mistd.losses.criterion import YOLOXCriterion

NUM_CLASSES = 2
STRIDES = (8, 16)


def _outputs(batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [
        (0.3 * torch.randn(batch, 5 + NUM_CLASSES, 8, 8, generator=generator)).requires_grad_(),
        (0.3 * torch.randn(batch, 5 + NUM_CLASSES, 4, 4, generator=generator)).requires_grad_(),
    ]


def _criterion(**kwargs) -> YOLOXCriterion:
    return YOLOXCriterion(num_classes=NUM_CLASSES, strides=STRIDES, **kwargs)


def _grads_finite(loss: torch.Tensor, outputs: list[torch.Tensor]) -> bool:
    grads = torch.autograd.grad(loss, outputs)
    return all(torch.isfinite(g).all() for g in grads)


def test_empty_targets_only_objectness():
    outputs = _outputs()
    losses = _criterion()(outputs, [torch.zeros(0, 5), torch.zeros(0)])
    assert set(losses) == {"total", "reg", "obj", "cls", "num_fg"}
    assert losses["num_fg"].item() == 0
    assert losses["reg"].item() == 0 and losses["cls"].item() == 0
    assert losses["obj"].item() > 0
    assert losses["total"].item() == pytest.approx(losses["obj"].item())
    grads = torch.autograd.grad(losses["total"], outputs)
    assert all(torch.isfinite(g).all() for g in grads)
    # only the objectness channel receives gradient
    assert grads[0][:, 4].abs().sum() > 0 and grads[0][:, :4].abs().sum() == 0


def test_single_box_all_terms_positive_and_weighted_sum():
    outputs = _outputs(batch=1)
    target = torch.tensor([[1.0, 30.0, 22.0, 6.0, 8.0]])
    losses = _criterion()(outputs, [target])
    assert losses["num_fg"].item() >= 1
    for key in ("reg", "obj", "cls"):
        assert losses[key].item() > 0
    expected = 4.0 * losses["reg"] + 1.0 * losses["obj"] + 1.2 * losses["cls"]
    assert losses["total"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert _grads_finite(losses["total"], outputs)


def test_boxes_partly_outside_the_image():
    outputs = _outputs(batch=1)
    targets = [torch.tensor([[0.0, -3.0, 10.0, 12.0, 8.0], [1.0, 62.0, 66.0, 10.0, 10.0]])]
    losses = _criterion()(outputs, targets)
    assert losses["num_fg"].item() >= 2
    assert all(math.isfinite(v.item()) for v in losses.values())
    assert _grads_finite(losses["total"], outputs)


def test_mixed_batch_sums_per_image_terms():
    outputs = _outputs(batch=2)
    targets = [torch.zeros(0, 5), torch.tensor([[0.0, 20.0, 20.0, 8.0, 8.0]])]
    criterion = _criterion()
    batch = criterion(outputs, targets)
    first = criterion([o[:1] for o in outputs], targets[:1])
    second = criterion([o[1:] for o in outputs], targets[1:])
    assert batch["num_fg"].item() == second["num_fg"].item()
    # every term is a sum over the batch divided by max(num_fg, 1)
    nfg = batch["num_fg"].item()
    assert batch["obj"].item() * nfg == pytest.approx(
        first["obj"].item() + second["obj"].item() * nfg, rel=1e-5
    )
    assert batch["cls"].item() == pytest.approx(second["cls"].item(), rel=1e-5)
    assert batch["reg"].item() == pytest.approx(second["reg"].item(), rel=1e-5)


def test_matches_a_value_computed_with_the_official_code():
    # Deterministic outputs; 10.88891315460205 was computed by the official CHAL
    # `nets/yolo_training.py::YOLOLoss(2, False, strides=[8, 16])` on the same input.
    outputs = [
        0.5
        * torch.sin(torch.arange(2 * 7 * 8 * 8, dtype=torch.float32) * 0.37).reshape(2, 7, 8, 8),
        0.5
        * torch.cos(torch.arange(2 * 7 * 4 * 4, dtype=torch.float32) * 0.53).reshape(2, 7, 4, 4),
    ]
    targets = [
        torch.tensor(
            [[1.0, 20.0, 24.0, 10.0, 6.0], [0.0, 40.0, 12.0, 4.0, 16.0], [1, 60, 60, 20, 20]]
        ),
        torch.zeros(0, 5),
    ]
    losses = _criterion()(outputs, targets)
    assert losses["num_fg"].item() == 3
    assert losses["total"].item() == pytest.approx(10.88891315460205, rel=1e-5)


def test_optimising_the_outputs_lowers_the_loss():
    outputs = _outputs(batch=1, seed=3)
    target = [torch.tensor([[0.0, 36.0, 28.0, 6.0, 6.0]])]
    criterion = _criterion()
    optimiser = torch.optim.SGD(outputs, lr=0.05)
    first = None
    for _ in range(30):
        loss = criterion(outputs, target)["total"]
        first = loss.item() if first is None else first
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert criterion(outputs, target)["total"].item() < 0.7 * first


def test_plain_bce_and_iou_variant_runs():
    outputs = _outputs(batch=1)
    criterion = _criterion(use_focal=False, box_loss="iou", nwd_weight=0.0, ciou_weight=1.0)
    losses = criterion(outputs, [torch.tensor([[0.0, 20.0, 20.0, 8.0, 8.0]])])
    assert _grads_finite(losses["total"], outputs)
