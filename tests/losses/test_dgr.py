"""DGR (BP-FPN): option A's loss sends gradient only to the finer level of each pair; option B's
hook removes conflicting gradient components and leaves the forward values untouched."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mistd.losses.dgr import (
    coarse_gradient_reference,
    direction_consistency_loss,
    project_conflicting_gradients,
    project_gradient,
)


def _levels(n: int = 2, channels=(4, 6, 8), size: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n, c, size >> i, size >> i, generator=g).requires_grad_(True)
        for i, c in enumerate(channels)
    ]


# ----------------------------------------------------------------------------------- option A
def test_a_coarse_level_gets_no_gradient_and_fine_does():
    fine, coarse = _levels(channels=(4, 6))[:2]
    direction_consistency_loss([fine, coarse]).backward()
    assert coarse.grad is None
    assert fine.grad is not None and fine.grad.abs().sum() > 0


def test_a_three_levels_p5_gets_nothing_p4_only_its_fine_role():
    p3, p4, p5 = _levels()
    direction_consistency_loss([p3, p4, p5]).backward()
    assert p5.grad is None
    # P4 is the fine side of (P4, P5) only: its gradient is that pair's term / 2 (mean of pairs)
    q4 = p4.detach().clone().requires_grad_(True)
    (direction_consistency_loss([q4, p5.detach()]) / 2).backward()
    torch.testing.assert_close(p4.grad, q4.grad)


def test_a_values_compare_centred_channel_mean_maps():
    coarse = torch.rand(2, 8, 4, 4)
    # the fine level's channel mean is exactly the upsampled coarse map + a constant offset, at
    # a different channel count and scale: identical direction -> 0
    up = F.interpolate(coarse.mean(1, keepdim=True), size=(8, 8), mode="bilinear")
    fine = (3.0 * up + 5.0).expand(2, 4, 8, 8)
    assert direction_consistency_loss([fine, coarse]).item() == pytest.approx(0.0, abs=1e-5)
    # the opposite pattern -> 2
    assert direction_consistency_loss([-fine, coarse]).item() == pytest.approx(2.0, abs=1e-5)


def test_a_descending_the_term_aligns_the_fine_level():
    fine, coarse = _levels(n=1, channels=(4, 6))[:2]
    opt = torch.optim.SGD([fine], lr=5.0)
    first = direction_consistency_loss([fine, coarse]).item()
    for _ in range(20):
        opt.zero_grad()
        direction_consistency_loss([fine, coarse]).backward()
        opt.step()
    assert direction_consistency_loss([fine, coarse]).item() < 0.5 * first


def test_a_rejects_a_single_level():
    with pytest.raises(ValueError, match="at least two"):
        direction_consistency_loss([torch.zeros(1, 2, 4, 4)])


# ----------------------------------------------------------------------------------- option B
def _grads_through_hook(levels, weights):
    outs = project_conflicting_gradients(levels)
    sum((o * w).sum() for o, w in zip(outs, weights, strict=True)).backward()
    return outs


def test_b_forward_is_unchanged():
    levels = _levels()
    outs = project_conflicting_gradients(levels)
    for level, out in zip(levels, outs, strict=True):
        assert out is not level and torch.equal(out, level)


def test_b_removes_conflicts_and_keeps_agreeing_samples():
    torch.manual_seed(0)
    p3, p4, p5 = _levels(n=2)
    w5 = torch.randn(p5.shape)
    # P4 agrees with P5, so its own gradient is untouched (checked below)
    w4 = torch.randn(p4.shape) + 10.0 * coarse_gradient_reference(w5, p4.shape)
    ref4 = coarse_gradient_reference(w4, p3.shape)
    # sample 0 conflicts with the coarser gradient, sample 1 agrees with it
    w3 = torch.randn(p3.shape)
    w3[0] = -3.0 * ref4[0] + 0.1 * w3[0]
    w3[1] = 3.0 * ref4[1] + 0.1 * w3[1]
    before = (w3 * ref4).flatten(1).sum(1)
    assert before[0] < 0 < before[1]

    _grads_through_hook([p3, p4, p5], [w3, w4, w5])
    assert torch.equal(p5.grad, w5)  # the coarsest level is the reference, never changed
    torch.testing.assert_close(p4.grad, w4)  # no conflict with P5
    after = (p3.grad * coarse_gradient_reference(p4.grad, p3.shape)).flatten(1).sum(1)
    assert after[0] >= -1e-4 * p3.grad[0].norm() * ref4[0].norm()
    assert after[0].abs() < 1e-3 * before[0].abs()  # the conflict is removed, not flipped
    torch.testing.assert_close(p3.grad[1], w3[1])  # the agreeing sample is untouched
    # only the component along the reference was removed
    removed = (w3[0] - p3.grad[0]).flatten()
    cos = F.cosine_similarity(removed, ref4[0].flatten(), dim=0)
    assert cos.abs().item() == pytest.approx(1.0, abs=1e-5)


def test_b_chain_uses_the_projected_coarse_gradient():
    torch.manual_seed(1)
    p3, p4, p5 = _levels(n=1)
    w5 = torch.randn(p5.shape)
    w4 = -2.0 * coarse_gradient_reference(w5, p4.shape) + 0.1 * torch.randn(p4.shape)
    w3 = torch.randn(p3.shape)
    _grads_through_hook([p3, p4, p5], [w3, w4, w5])
    projected4 = project_gradient(w4, coarse_gradient_reference(w5, p4.shape))
    assert not torch.allclose(projected4, w4)  # P4 did conflict with P5
    torch.testing.assert_close(p4.grad, projected4)
    inner4 = (p4.grad * coarse_gradient_reference(p5.grad, p4.shape)).sum()
    inner3 = (p3.grad * coarse_gradient_reference(p4.grad, p3.shape)).sum()
    assert inner4 >= -1e-4 and inner3 >= -1e-4 * p3.grad.norm() * p4.grad.norm()


def test_b_is_absent_without_grad_mode():
    levels = [level.detach() for level in _levels()]
    with torch.no_grad():
        outs = project_conflicting_gradients(levels)
    assert all(o is level for o, level in zip(outs, levels, strict=True))


def test_project_gradient_without_reference_is_identity():
    torch.manual_seed(2)
    grad = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(project_gradient(grad, torch.zeros_like(grad)), grad)
