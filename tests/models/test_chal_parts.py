"""CHAL's parts in isolation, the paper preset and the ablation switches."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mistd.models.attention import CBAM
from mistd.models.detectors.chal import normalized_residual, prefix_indices
from mistd.models.temporal.background_field import (
    BackgroundFieldMLP,
    NeuralBackgroundField,
    fourier_features,
    pixel_grid,
)
from mistd.models.temporal.causal_gate import CausalGate, amplifier
from mistd.models.temporal.motion_verification import MotionVerification
from mistd.models.temporal.swin3d import (
    SwinLayer3D,
    effective_window,
    min_unchanged_size,
    relative_position_index,
    shifted_window_mask,
    window_merge,
    window_partition,
)
from mistd.models.zoo import build_model


def test_cbam_is_channel_then_spatial_attention():
    torch.manual_seed(0)
    cbam = CBAM(32).eval()
    x = torch.randn(2, 32, 6, 5)
    fc1, fc2 = cbam.channel_attention.mlp[0].weight, cbam.channel_attention.mlp[2].weight

    def mlp(v):
        return F.conv2d(F.relu(F.conv2d(v, fc1)), fc2)

    channel = torch.sigmoid(mlp(x.mean((2, 3), keepdim=True)) + mlp(x.amax((2, 3), keepdim=True)))
    y = x * channel
    conv = cbam.spatial_attention.conv
    pooled = torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1)
    expected = y * torch.sigmoid(F.conv2d(pooled, conv.weight, conv.bias, padding=3))
    torch.testing.assert_close(cbam(x), expected)
    assert conv.bias is not None and cbam.channel_attention.mlp[0].bias is None


def test_fourier_features_layout():
    coords = torch.tensor([[0.25, -0.5, 1.0]])
    frequencies = [2.0**k for k in range(6)]
    out = fourier_features(coords, frequencies)
    assert out.shape == (1, 39)
    torch.testing.assert_close(out[:, :3], coords)
    torch.testing.assert_close(out[:, 3:6], torch.sin(math.pi * coords))
    torch.testing.assert_close(out[:, 6:9], torch.cos(math.pi * coords))
    torch.testing.assert_close(out[:, 33:36], torch.sin(32 * math.pi * coords))


def test_pixel_grid_is_x_then_y_row_major():
    grid = pixel_grid(3, 5)
    assert grid.shape == (15, 2)
    torch.testing.assert_close(grid[0], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(grid[1], torch.tensor([-0.5, -1.0]))  # x varies fastest
    torch.testing.assert_close(grid[5], torch.tensor([-1.0, 0.0]))


def test_field_mlp_equals_plain_mlp_on_concatenation():
    torch.manual_seed(0)
    mlp = BackgroundFieldMLP(39, 96, hidden=64, out_channels=16)
    coords, code = torch.randn(20, 39), torch.randn(3, 96)
    full = torch.cat([coords.expand(3, -1, -1), code[:, None].expand(-1, 20, -1)], dim=-1)
    x = F.relu(F.linear(full, mlp.input_layer.weight, mlp.input_layer.bias))
    for layer in mlp.layers_before_skip:
        x = F.relu(layer(x))
    x = F.relu(F.linear(torch.cat([x, full], -1), mlp.skip_layer.weight, mlp.skip_layer.bias))
    for layer in mlp.layers_after_skip:
        x = F.relu(layer(x))
    expected = mlp.output_layer(x)
    torch.testing.assert_close(mlp(coords, code), expected, rtol=1e-5, atol=1e-5)
    # Per-clip coordinates (the paper's per-frame time) broadcast the same way.
    torch.testing.assert_close(mlp(coords.expand(3, -1, -1), code), expected, rtol=1e-5, atol=1e-5)


def test_background_field_time_coordinate():
    torch.manual_seed(0)
    field = NeuralBackgroundField(16, scene_dim=8, motion_dim=4, mlp_hidden=32).eval()
    volume = torch.randn(2, 16, 5, 4, 8)
    with torch.no_grad():
        constant = field(volume)
        ones = field(volume, torch.ones(2))
        other = field(volume, torch.tensor([0.0, 1.0]))
    assert constant.shape == (2, 16, 4, 8)
    torch.testing.assert_close(constant, ones)
    torch.testing.assert_close(other[1], constant[1])
    assert not torch.allclose(other[0], constant[0])
    assert "time_scale" in dict(field.named_buffers())  # official: never receives a gradient
    learnable = NeuralBackgroundField(16, scene_dim=8, motion_dim=4, learnable_time_scale=True)
    assert "time_scale" in dict(learnable.named_parameters())


@pytest.mark.parametrize("training", [False, True])
def test_background_field_by_temporal_taps_equals_volumes(training):
    torch.manual_seed(0)
    field = NeuralBackgroundField(16, scene_dim=8, motion_dim=4, mlp_hidden=32).train(training)
    frames = torch.randn(2, 5, 16, 8, 12)
    for index in (prefix_indices(5), prefix_indices(5)[[4]], prefix_indices(5)[[1, 3]]):
        volumes = frames[:, index].permute(1, 0, 3, 2, 4, 5).flatten(0, 1)  # [K*B, C, T, h, w]
        expected = field(volumes)
        torch.testing.assert_close(
            field.forward_frame_selections(frames, index), expected, rtol=1e-5, atol=1e-6
        )


def test_scene_encoder_names_its_volume_layers_without_new_weights():
    """Streaming reads the volume convolutions by name; the names add no state-dict keys."""
    encoder = NeuralBackgroundField(16, scene_dim=8, motion_dim=4, mlp_hidden=32).scene_encoder
    keys = set(encoder.state_dict())
    assert encoder.scene_conv1.weight.shape == (8, 16, 3, 3, 3)
    assert encoder.scene_conv2.weight.shape == (4, 8, 3, 3, 3)
    assert encoder.motion_conv.weight.shape == (8, 16, 2, 3, 3)
    assert (encoder.scene_bn1.num_features, encoder.scene_bn2.num_features) == (8, 4)
    assert encoder.motion_bn.num_features == 8
    assert encoder.scene_code_layers[0].in_features == 4 * 16
    assert encoder.motion_code_layers[0].in_features == 8 * 4
    named = ("scene_conv", "scene_bn", "motion_conv", "motion_bn", "scene_code", "motion_code")
    assert not any(k.startswith(named) for k in keys)
    assert "volume_convs.0.weight" in keys and "motion_branch.0.weight" in keys


def test_prefix_indices_repeat_the_last_frame():
    expected = torch.tensor(
        [[0, 0, 0, 0, 0], [0, 1, 1, 1, 1], [0, 1, 2, 2, 2], [0, 1, 2, 3, 3], [0, 1, 2, 3, 4]]
    )
    assert torch.equal(prefix_indices(5), expected)


def test_relative_position_index_brute_force():
    window = (3, 2, 4)
    index = relative_position_index(window)
    coords = [(d, h, w) for d in range(3) for h in range(2) for w in range(4)]
    for i, (d1, h1, w1) in enumerate(coords):
        for j, (d2, h2, w2) in enumerate(coords):
            expected = (d1 - d2 + 2) * (3 * 7) + (h1 - h2 + 1) * 7 + (w1 - w2 + 3)
            assert index[i, j] == expected


def test_window_partition_round_trip_and_effective_window():
    x = torch.randn(2, 5, 8, 12, 3)
    windows = window_partition(x, (5, 4, 4))
    assert windows.shape == (2 * 2 * 3, 80, 3)
    torch.testing.assert_close(window_merge(windows, (5, 4, 4), 2, 5, 8, 12), x)
    assert effective_window((5, 4, 8), (5, 4, 4), (0, 2, 2)) == ((5, 4, 4), (0, 0, 2))


@pytest.mark.parametrize("shift", [(0, 0, 0), (0, 2, 2), (1, 0, 3)])
def test_min_unchanged_size_is_where_the_window_stops_shrinking(shift):
    """An exported (traced) Swin layer keeps its window: valid exactly from `min_size()` up."""
    window = (3, 4, 4)
    lowest = min_unchanged_size(window, shift)
    for size in itertools.product(range(1, 7), repeat=3):
        unchanged = effective_window(size, window, shift) == (window, shift)
        assert unchanged == all(s >= m for s, m in zip(size, lowest, strict=True)), size
    assert SwinLayer3D(8, 2, window=window, shift=shift).min_size() == lowest


def test_shift_mask_separates_regions():
    mask = shifted_window_mask((1, 8, 8), (1, 4, 4), (0, 2, 2), torch.device("cpu"), torch.float32)
    assert mask.shape == (4, 16, 16)
    assert (mask[0] == 0).all()  # the top-left window is one region
    assert ((mask[3] == -100).sum(dim=1) == 12).all()  # 4 regions of 4 tokens
    assert ((mask[1] == -100).sum(dim=1) == 8).all()  # 2 regions of 8 tokens


def _changed_pixels(layer: SwinLayer3D, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
    """[H, W] bool: where the layer's output moves when input token (row, col) changes."""
    y = x.clone()
    # Not a constant over channels: LayerNorm would remove it.
    y[:, :, row, col] += torch.linspace(-1.0, 1.0, x.shape[-1])
    with torch.no_grad():
        return (layer(y) - layer(x)).abs().amax(dim=(0, 1, 4)) > 0


def test_swin_layer_windows_shift_and_mask():
    torch.manual_seed(0)
    plain = SwinLayer3D(8, 2, window=(5, 4, 4)).eval()
    shifted = SwinLayer3D(8, 2, window=(5, 4, 4), shift=(0, 2, 2)).eval()
    shifted.load_state_dict(plain.state_dict())
    padded = torch.randn(1, 5, 6, 10, 8)  # not window multiples: zero-padded after norm1
    assert plain(padded).shape == padded.shape and shifted(padded).shape == padded.shape

    x = torch.randn(1, 5, 8, 8, 8)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:4, :4] = True  # the unshifted window holding (3, 3)
    assert torch.equal(_changed_pixels(plain, x, 3, 3), expected)
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:6, 2:6] = True  # shifted by 2: the window is rows/cols 2..5
    assert torch.equal(_changed_pixels(shifted, x, 3, 3), expected)
    # (0, 0) rolls into the bottom-right window next to rows/cols 6, 7 of the far edge; the mask
    # keeps the wrapped-around region apart.
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(_changed_pixels(shifted, x, 0, 0), expected)


def test_motion_verification_readouts():
    torch.manual_seed(0)
    anomaly = torch.rand(2, 5, 1, 8, 8)
    official = MotionVerification(5, dim=8, num_heads=2)
    official.eval()
    with torch.no_grad():
        tokens = official.tokens(anomaly)
        key = official.reconstruct(tokens[:, -1].permute(0, 3, 1, 2))
        torch.testing.assert_close(official(anomaly), key)
    official.train()  # one layer: no stochastic depth; BN statistics over the folded frames
    tokens = official.tokens(anomaly)
    frames = official.reconstruct(tokens.flatten(0, 1).permute(0, 3, 1, 2)).unflatten(0, (2, 5))
    torch.testing.assert_close(official(anomaly), frames.mean(dim=1))

    learned = MotionVerification(5, dim=8, num_heads=2, num_layers=2, temporal_readout="learned")
    assert learned.layers[1].shift == (0, 2, 2) and learned.layers[0].shift == (0, 0, 0)
    assert learned.layers[1].drop_path == pytest.approx(0.2)
    learned.eval()
    with torch.no_grad():
        learned.temporal_weights.copy_(torch.tensor([-50.0, -50, -50, -50, 50]))
        tokens = learned.tokens(anomaly)
        key = learned.reconstruct(tokens[:, -1].permute(0, 3, 1, 2))
        torch.testing.assert_close(learned(anomaly), key)


def test_amplifier_and_gate_residual():
    a = torch.tensor([-0.5, 0.2, 0.3, 0.31, 1.5])
    torch.testing.assert_close(amplifier(a), torch.tensor([0.0, 0.02, 0.03, 0.248, 0.8]))
    torch.manual_seed(0)
    features, anomaly = torch.randn(1, 16, 4, 4), torch.rand(1, 1, 4, 4)
    gate = CausalGate(16).eval()
    gate.refine = torch.nn.Identity()
    with torch.no_grad():
        plain, gain = gate(features, anomaly)
        torch.testing.assert_close(plain, features * gate.mask(features) * (1 + gain))
        gate.residual = True
        torch.testing.assert_close(gate(features, anomaly)[0], features + plain)


def test_normalized_residual_is_per_sample():
    f = torch.randn(3, 4, 5, 6)
    r = normalized_residual(f, torch.zeros_like(f))
    assert r.shape == (3, 1, 5, 6)
    torch.testing.assert_close(r.amin(dim=(1, 2, 3)), torch.zeros(3))
    torch.testing.assert_close(r.amax(dim=(1, 2, 3)), torch.ones(3), atol=1e-6, rtol=0)


TINY = {"width": 0.125, "num_frames": 3, "input_size": [64, 64]}
TARGETS = [torch.tensor([[0.0, 20.0, 24.0, 6.0, 6.0]]), torch.zeros((0, 5))]


@pytest.mark.parametrize(
    ("switches", "expected_maps"),
    [
        ({}, {"background", "appearance_anomaly", "anomaly", "gate"}),
        ({"snf": False}, {"background", "appearance_anomaly", "anomaly", "gate"}),
        ({"hal": False}, {"background", "anomaly", "gate"}),
        ({"crg": False}, {"background", "appearance_anomaly", "anomaly"}),
        ({"snf": False, "hal": False}, {"gate"}),
        ({"snf": False, "hal": False, "crg": False}, set()),
    ],
)
def test_ablation_switches_remove_parts(switches, expected_maps):
    torch.manual_seed(0)
    model, _ = build_model("chal", {**TINY, **switches})
    names = {name.split(".")[0] for name, _ in model.named_parameters()}
    assert ("background_field" in names) == switches.get("snf", True)
    assert ("motion_verification" in names) == switches.get("hal", True)
    assert ("gate" in names) == switches.get("crg", True)
    clip = torch.randn(2, 3, 3, 64, 64)
    model.train()
    losses = model.loss(clip, TARGETS)
    assert torch.isfinite(losses["total"])
    losses["total"].backward()
    model.eval()
    detections = model.predict(clip, return_maps=True)
    assert len(detections) == 2
    assert set(detections[0].maps) - {"background_residual"} == expected_maps
    for name, value in detections[0].maps.items():
        expected = (3, 8, 8) if name == "appearance_anomaly" else (8, 8)
        assert tuple(value.shape) == expected, name


def test_paper_preset_learns_what_the_official_code_freezes():
    torch.manual_seed(0)
    paper, cfg = build_model("chal-paper", TINY)
    assert cfg.loss.nwd_weight == 1.0 and cfg.loss.ciou_weight == 0.0
    assert len(paper.motion_verification.layers) == 2 and paper.gate.residual
    paper.train()
    paper.loss(torch.randn(2, 3, 3, 64, 64), TARGETS)["total"].backward()
    for name in (
        "background_field.time_scale",
        "motion_verification.temporal_weights",
        "motion_verification.token_bias",
        "motion_verification.layers.1.attn.relative_position_bias_table",
    ):
        grad = dict(paper.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all(), name

    official, _ = build_model("chal", TINY)
    frozen = {n for n, p in official.named_parameters() if not p.requires_grad}
    assert frozen == {
        "motion_verification.token_bias",
        "motion_verification.temporal_weights",
        "motion_verification.layers.0.attn.relative_position_bias_table",
    }


def test_widths_are_official_at_yolox_s():
    model, _ = build_model("chal", {"input_size": [64, 64]})
    assert model.early_fusion.align_p3.conv.out_channels == 128
    assert model.background_field.scene_encoder.code_dim == 96
    assert model.background_field.field.input_layer.in_features == 135
    assert model.background_field.field.skip_layer.in_features == 391
    assert model.motion_verification.token_bias.shape == (1, 32)
    assert model.head.stems[0].conv.out_channels == 256


def test_clip_length_is_checked():
    model, _ = build_model("chal", TINY)
    with pytest.raises(ValueError, match="3 frames"):
        model(torch.randn(1, 5, 3, 64, 64))
