"""Directional gradient regularization (DGR) of a feature pyramid (BP-FPN, docs/design.md §4.4).

The BP-FPN paper (arXiv 2511.13013) states that DGR keeps the gradient/feature directions of
pyramid levels consistent during backpropagation; its equations are not public. This module is our
documented reading, in two switchable forms (`loss.dgr` = `a` | `b` | `off`).

Levels are `(P3, P4, P5)`, finest first, each `[N, C_l, H_l, W_l]` with `H_{l+1} = H_l / 2`
(any channels: YOLOX-S has 128/256/512). Levels of different channels and strides are compared
through ONE fixed, parameter-free map per level:

    s_l = mean over channels of level l                                   [N, 1, H_l, W_l]

and the coarser map is brought to the finer map's resolution (option A: bilinear,
`align_corners=False`; option B: nearest, the adjoint of 2x2 sum pooling, so every fine pixel sees
its parent cell's gradient).

Option A (`direction_consistency_loss`, a loss term): for each adjacent pair (fine l, coarse l+1),

    a = s_l,  b = up(s_{l+1}).detach()   (flattened per sample over H_l * W_l pixels)
    a, b centred by their per-sample spatial mean
    term = 1 - cos(a, b)   (in [0, 2]; mean over the samples, then over the pairs)

Centring makes the cosine a spatial correlation: post-SiLU feature maps are mostly positive, so an
uncentred cosine is close to 1 for almost any pair and says nothing. The coarse side is detached,
so the term only pulls the finer level towards the coarser level's spatial pattern (gradient flows
one way, fine <- coarse); the coarse level gets no gradient from it.

Option B (`project_conflicting_gradients`, a backward hook; forward is the identity): the levels
pass through one autograd function whose backward receives the gradients of all levels at once
(those flowing back from the head / fold, accumulated over every consumer downstream of it). Going
from coarse to fine, each level's gradient `g_l [N, C_l, H_l, W_l]` is compared with the coarser
level's outgoing gradient brought to its shape,

    r_l = nearest_up(mean over channels of g_{l+1}') expanded over the C_l channels,

and per sample (one vector per sample, as PCGrad has one vector per task), if `<g_l, r_l> < 0`
the conflicting component is removed: `g_l' = g_l - <g_l, r_l> / ||r_l||^2 * r_l`, so afterwards
`<g_l', r_l> = 0` (it is >= 0 in every case). The coarsest level's gradient is left unchanged and is
the reference direction of the chain. Using the coarse gradient AFTER its own projection keeps the
whole chain consistent.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

DGR_MODES = ("off", "a", "b")


def level_map(level: torch.Tensor) -> torch.Tensor:
    """Channel mean of a level: `[N, C, H, W] -> [N, 1, H, W]` (the fixed map DGR compares)."""
    return level.mean(dim=1, keepdim=True)


def _check_levels(levels: Sequence[torch.Tensor]) -> None:
    if len(levels) < 2:
        raise ValueError(f"DGR needs at least two pyramid levels, got {len(levels)}")
    for fine, coarse in zip(levels[:-1], levels[1:], strict=True):
        if fine.dim() != 4 or coarse.dim() != 4 or fine.shape[0] != coarse.shape[0]:
            raise ValueError(
                "DGR levels must be [N, C, H, W] with the same N, got "
                f"{tuple(fine.shape)} and {tuple(coarse.shape)}"
            )


def direction_consistency_loss(levels: Sequence[torch.Tensor], eps: float = 1e-8) -> torch.Tensor:
    """DGR option A: mean over adjacent pairs of `1 - centred cosine(s_fine, up(s_coarse))`.

    Args:
        levels: `(P3, P4, P5)`, finest first, each `[N, C_l, H_l, W_l]`.
        eps: added to the norms (a constant map has no direction; its term is 1).

    Returns a scalar in [0, 2]. The coarser level of each pair is detached (see module docstring).
    """
    _check_levels(levels)
    terms = []
    for fine, coarse in zip(levels[:-1], levels[1:], strict=True):
        a = level_map(fine).float()
        b = F.interpolate(
            level_map(coarse.detach()).float(),
            size=a.shape[-2:],
            mode="bilinear",
            align_corners=False,
        )
        a = a.flatten(1)
        b = b.flatten(1)
        a = a - a.mean(dim=1, keepdim=True)
        b = b - b.mean(dim=1, keepdim=True)
        cosine = (a * b).sum(dim=1) / (a.norm(dim=1) * b.norm(dim=1) + eps)
        terms.append((1.0 - cosine).mean())
    return torch.stack(terms).mean()


def coarse_gradient_reference(coarse_grad: torch.Tensor, fine_shape: torch.Size) -> torch.Tensor:
    """Bring a coarser level's gradient `[N, C_c, H_c, W_c]` to a finer level's shape `fine_shape`
    `[N, C_f, H_f, W_f]`: channel mean, nearest upsampling, expanded over the fine channels."""
    reference = F.interpolate(level_map(coarse_grad), size=fine_shape[-2:], mode="nearest")
    return reference.expand(fine_shape)


def project_gradient(grad: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Per sample, remove from `grad [N, ...]` its component along `reference [N, ...]` where the
    two conflict (negative inner product); samples without conflict are returned unchanged."""
    g = grad.flatten(1)
    r = reference.flatten(1).to(g.dtype)
    dot = (g * r).sum(dim=1, keepdim=True)
    norm2 = (r * r).sum(dim=1, keepdim=True)
    conflict = (dot < 0) & (norm2 > 0)
    coefficient = torch.where(conflict, dot / norm2.clamp_min(torch.finfo(g.dtype).tiny), 0.0)
    return (g - coefficient * r).view_as(grad)


class _ProjectConflictingGradients(torch.autograd.Function):
    """Identity forward on the levels; PCGrad-style projection of their gradients backward."""

    @staticmethod
    def forward(ctx, *levels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # view_as: new tensors (autograd needs distinct outputs) sharing the inputs' storage.
        return tuple(level.view_as(level) for level in levels)

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        out = list(grads)
        for i in range(len(out) - 2, -1, -1):
            fine, coarse = out[i], out[i + 1]
            if fine is None or coarse is None:
                continue
            out[i] = project_gradient(fine, coarse_gradient_reference(coarse, fine.shape))
        return tuple(out)


def project_conflicting_gradients(
    levels: Sequence[torch.Tensor],
) -> tuple[torch.Tensor, ...]:
    """DGR option B: return the levels unchanged (same values, a view each) with a backward hook
    that removes, coarse to fine, the component of each level's gradient that conflicts with the
    coarser level's (see module docstring). Without grad mode (inference, export) the levels are
    returned as they are, so the exported graph has no trace of it."""
    _check_levels(levels)
    if not torch.is_grad_enabled() or not any(level.requires_grad for level in levels):
        return tuple(levels)
    return _ProjectConflictingGradients.apply(*levels)
