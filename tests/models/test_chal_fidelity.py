"""CHAL reproduces the official code: fixture tensors, parameter count, batching invariance."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import torch

from mistd.models.complexity import count_parameters, count_used_parameters
from mistd.models.official import convert_official, relative_l2, verify_against_reference
from mistd.models.zoo import build_model

TOLERANCE = 1e-4


@functools.cache
def _load_official_chal(folder: Path) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    state_dict = torch.load(folder / "official_state_dict_fp16.pt", weights_only=True)
    reference = torch.load(folder / "official_io_128.pt", weights_only=True)
    converted, _ = convert_official(state_dict)
    model, _ = build_model("chal", {})
    model.load_state_dict(converted, strict=True)
    return model.eval(), reference


@pytest.fixture
def official_chal(shared_dir: Path):
    """Our `chal` with the official fixture weights, and the official reference tensors."""
    return _load_official_chal(shared_dir / "fixtures" / "chal_official")


def test_fixture_tensors_match_official(official_chal):
    model, reference = official_chal
    errors = verify_against_reference(model, reference)
    assert set(errors) == {"fused", "background", "appearance_anomaly", "anomaly", "neck", "head"}
    for name, error in errors.items():
        assert error < TOLERANCE, f"{name}: relative L2 error {error:.3e}"


def test_fixture_detects_a_wrong_constant(official_chal):
    """The comparison is sensitive: a changed amplifier gain (eta 0.8 -> 0.7) is caught."""
    model, reference = official_chal
    model.gate.scale = 0.7
    try:
        errors = verify_against_reference(model, reference)
    finally:
        model.gate.scale = 0.8
    assert errors["fused"] < TOLERANCE and errors["anomaly"] < TOLERANCE
    assert errors["head"] > 1e-2


def test_used_parameters_equal_official_count():
    torch.manual_seed(0)
    model, _ = build_model("chal", {})
    model.eval()
    clip = torch.randn(1, 5, 3, 64, 64)
    # Official: 15,686,519 parameters take part in the forward (paper: 15.69M).
    assert count_used_parameters(model, clip) == 15_686_519
    assert count_parameters(model) == 15_686_519  # no dead or duplicated layer is built
    paper, _ = build_model("chal-paper", {})
    paper.eval()
    assert count_used_parameters(paper, clip) == count_parameters(paper)


def _randomize_batchnorm(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)


@torch.no_grad()
def _per_frame_reference(model, clip: torch.Tensor) -> dict[str, torch.Tensor]:
    """The official evaluation order with our modules: one sample, one frame, one SNF call at a
    time (no folding, no stacking)."""
    outputs: dict[str, list[torch.Tensor]] = {k: [] for k in ("fused", "background", "head")}
    outputs.update(appearance_anomaly=[], anomaly=[], neck=[])
    t = clip.shape[1]
    for sample in clip:
        fused = [model.frame_features(sample[k : k + 1]) for k in range(t)]
        backgrounds, appearance = [], []
        for k in range(t):
            prefix = fused[: k + 1] + [fused[k]] * (t - 1 - k)
            backgrounds.append(model.background_field(torch.stack(prefix, dim=2)))
            appearance.append(model.appearance_anomaly(fused[k], backgrounds[k]))
        anomaly = model.motion_verification(torch.stack(appearance, dim=1))
        neck, _ = model.gate(fused[-1], anomaly)
        outputs["fused"].append(torch.stack(fused, dim=1))
        outputs["background"].append(torch.stack(backgrounds, dim=1))
        outputs["appearance_anomaly"].append(torch.stack(appearance, dim=1))
        outputs["anomaly"].append(anomaly)
        outputs["neck"].append(neck)
        outputs["head"].append(model.head([neck])[0])
    return {k: torch.cat(v) for k, v in outputs.items()}


@pytest.mark.parametrize("size", [(96, 160), (64, 32)])
def test_folded_batched_model_equals_per_frame_loop(size):
    torch.manual_seed(1)
    model, _ = build_model("chal", {"width": 0.25})
    _randomize_batchnorm(model, 1)
    model.eval()
    clip = torch.randn(2, 5, 3, *size)
    with torch.no_grad():
        outputs, maps = model.forward_with_maps(clip)
    maps["head"] = outputs[0]
    reference = _per_frame_reference(model, clip)
    for name, expected in reference.items():
        assert maps[name].shape == expected.shape, name
        assert relative_l2(maps[name], expected) < 1e-5, name


def test_batch_of_two_equals_two_single_runs():
    torch.manual_seed(2)
    model, _ = build_model("chal", {"width": 0.25})
    _randomize_batchnorm(model, 2)
    model.eval()
    clip = torch.randn(2, 5, 3, 64, 96)
    with torch.no_grad():
        both = model(clip)[0]
        single = torch.cat([model(clip[i : i + 1])[0] for i in range(2)])
    assert relative_l2(both, single) < 1e-5
