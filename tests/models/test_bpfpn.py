"""BP-FPN (GILS + DGR) in every host: gradient isolation, exact start at the host, DGR wiring,
parameter overhead."""

from __future__ import annotations

import pytest
import torch

from mistd.errors import InputError
from mistd.losses.dgr import direction_consistency_loss
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.complexity import count_parameters
from mistd.models.necks.bpfpn import BPFPN, LowLevelShortcut
from mistd.models.zoo import ZOO, build_model

HOSTS = ("yolox-s", "mf-baseline", "chal")


def _tiny(name: str, **overrides):
    torch.manual_seed(0)
    return build_model(name, {**ZOO[name][0].tiny_overrides(), **overrides})


def _clip(cfg, batch: int = 2, seed: int = 1) -> torch.Tensor:
    h, w = cfg.input_size
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, cfg.num_frames, 3, h, w, generator=g)


def _targets(cfg) -> list[torch.Tensor]:
    h, w = cfg.input_size
    return [torch.tensor([[0.0, w * 0.4, h * 0.5, 6.0, 6.0]]), torch.zeros(0, 5)]


def _grad_norm(module: torch.nn.Module) -> float:
    return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)


# ------------------------------------------------------------------------- gradient isolation
@pytest.mark.parametrize("down", ["unshuffle", "strided"])
@pytest.mark.parametrize("variant", ["gils", "ls"])
def test_shortcut_path_gradient_reaches_backbone_only_without_isolation(variant, down):
    torch.manual_seed(0)
    backbone = CSPDarknet(width=0.125, out_features=("dark2", "dark3", "dark4", "dark5"))
    c2 = backbone.output_shape()["dark2"][0]
    shortcut = LowLevelShortcut(
        in_channels=c2, out_channels=4 * c2 // 2, isolate=variant == "gils", down=down
    )
    torch.nn.init.normal_(shortcut.fuse.weight)  # as after the first steps (it starts at zero)
    features = backbone(torch.randn(2, 3, 64, 64))
    shortcut(features["dark2"]).sum().backward()  # a loss through the shortcut path only

    assert _grad_norm(shortcut.down) > 0  # the downsampling module learns from this path
    stem_dark2 = list(backbone.stem.parameters()) + list(backbone.dark2.parameters())
    if variant == "gils":
        assert all(p.grad is None or not p.grad.any() for p in stem_dark2)
    else:
        assert all(p.grad is not None for p in stem_dark2)
        assert _grad_norm(backbone.stem) > 0 and _grad_norm(backbone.dark2) > 0
    # deeper stages are not on this path in either variant
    assert all(p.grad is None for p in backbone.dark3.parameters())


@pytest.mark.parametrize("variant", ["gils", "ls"])
def test_host_shortcut_isolation_and_first_step(variant):
    model, cfg = _tiny("mf-baseline", gils=variant)
    shortcut = model.bpfpn.shortcut
    assert shortcut.isolate == (variant == "gils")
    # zero-initialised fuse: the full loss moves `fuse` first, `down` gets nothing yet
    model.loss(_clip(cfg), _targets(cfg))["total"].backward()
    assert shortcut.fuse.weight.grad.abs().sum() > 0
    assert _grad_norm(shortcut.down) == 0
    # after that step, a loss through the shortcut path alone reaches dark2 only for LS
    with torch.no_grad():
        shortcut.fuse.weight.sub_(shortcut.fuse.weight.grad)
    model.zero_grad(set_to_none=True)
    features = model.backbone(_clip(cfg).flatten(0, 1))
    shortcut(features["dark2"]).sum().backward()
    assert _grad_norm(shortcut.down) > 0
    assert (_grad_norm(model.backbone.dark2) > 0) == (variant == "ls")
    assert (_grad_norm(model.backbone.stem) > 0) == (variant == "ls")


# ------------------------------------------------------------------ exact start at the host
@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize(
    "bp", [{"gils": "gils"}, {"gils": "ls", "gils_down": "strided"}, {"loss": {"dgr": "b"}}]
)
def test_bpfpn_host_starts_bit_identical_to_the_host(host, bp):
    base, cfg = _tiny(host)
    plugged, _ = _tiny(host, **bp)
    assert plugged.bpfpn is not None
    # same seed -> the host's own parameters are identical (BP-FPN is built under a forked RNG)
    base_state = base.state_dict()
    plugged_state = plugged.state_dict()
    extra = set(plugged_state) - set(base_state)
    assert set(base_state) <= set(plugged_state)
    assert all(k.startswith("bpfpn.") for k in extra)
    assert all(torch.equal(base_state[k], plugged_state[k]) for k in base_state)

    clip = _clip(cfg)
    for train in (False, True):
        base.train(train)
        plugged.train(train)
        torch.manual_seed(3)  # dropout / drop path draw the same numbers
        expected = base(clip)
        torch.manual_seed(3)
        got = plugged(clip)
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))

    # gradients of the host's parameters too (DGR B may project them: only GILS/LS here)
    if "gils" in bp:
        torch.manual_seed(3)
        base.loss(clip, _targets(cfg))["total"].backward()
        torch.manual_seed(3)
        plugged.loss(clip, _targets(cfg))["total"].backward()
        plugged_params = dict(plugged.named_parameters())
        for name, p in base.named_parameters():
            if p.grad is not None:
                assert torch.equal(p.grad, plugged_params[name].grad), name


# ------------------------------------------------------------------------------- DGR wiring
@pytest.mark.parametrize("host", HOSTS)
def test_dgr_a_is_added_to_the_total(host):
    model, cfg = _tiny(host, loss={"dgr": "a", "dgr_weight": 0.5})
    model.train()
    clip, targets = _clip(cfg), _targets(cfg)
    torch.manual_seed(3)
    losses = model.loss(clip, targets)
    torch.manual_seed(3)
    levels = model.levels(clip[:, -1] if host == "yolox-s" else clip.flatten(0, 1))
    torch.testing.assert_close(losses["dgr"], direction_consistency_loss(levels).detach())
    plain = {k: v for k, v in losses.items() if k not in ("dgr", "total")}
    assert losses["total"].requires_grad and not losses["dgr"].requires_grad
    assert losses["dgr"].item() > 0 and set(plain) >= {"reg", "obj", "cls"}
    parts = 4.0 * plain["reg"] + plain["obj"] + 1.2 * plain["cls"] + 0.5 * losses["dgr"]
    torch.testing.assert_close(losses["total"].detach(), parts, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("host", HOSTS)
def test_dgr_b_hook_is_in_the_training_graph_only(host):
    model, cfg = _tiny(host, loss={"dgr": "b"})
    frames = _clip(cfg).flatten(0, 1)
    model.train()
    levels = model.levels(frames)
    assert all("ProjectConflictingGradients" in type(x.grad_fn).__name__ for x in levels)
    assert "dgr" not in model.loss(_clip(cfg), _targets(cfg))
    model.eval()
    levels = model.levels(frames)
    assert not any("ProjectConflictingGradients" in type(x.grad_fn).__name__ for x in levels)


def test_dgr_b_changes_gradients_when_levels_conflict():
    # same weights and data; B projects the per-level gradients, so some host gradient differs
    base, cfg = _tiny("yolox-s")
    hooked, _ = _tiny("yolox-s", loss={"dgr": "b"})
    clip, targets = _clip(cfg, batch=2), _targets(cfg)
    base.loss(clip, targets)["total"].backward()
    hooked.loss(clip, targets)["total"].backward()
    diffs = [
        not torch.equal(p.grad, q.grad)
        for p, q in zip(base.neck.parameters(), hooked.neck.parameters(), strict=True)
        if p.grad is not None
    ]
    assert any(diffs)
    # the head sits above the hook: its gradients are untouched
    for p, q in zip(base.head.parameters(), hooked.head.parameters(), strict=True):
        if p.grad is not None:
            assert torch.equal(p.grad, q.grad)


# ------------------------------------------------------------------------------ config / size
def test_bad_switch_values_are_input_errors():
    with pytest.raises(InputError, match="gils"):
        build_model("yolox-s", {"gils": "yes"})
    with pytest.raises(InputError, match="dgr"):
        build_model("mf-baseline", {"loss": {"dgr": "c"}})
    with pytest.raises(ValueError, match="unknown DGR mode"):
        BPFPN(dgr="c")


def test_bp_presets_and_overrides():
    model, cfg = build_model("yolox-bp", ZOO["yolox-bp"][0].tiny_overrides())
    assert model.bpfpn.shortcut is not None and model.bpfpn.dgr == cfg.loss.dgr == "off"
    model, cfg = build_model(
        "yolox-bp", {**ZOO["yolox-bp"][0].tiny_overrides(), "gils": "off", "loss": {"dgr": "a"}}
    )
    assert model.bpfpn.shortcut is None and model.bpfpn.dgr == cfg.loss.dgr == "a"
    assert model.backbone.out_features == ("dark3", "dark4", "dark5")
    model, cfg = build_model(
        "chal-bp", {**ZOO["chal-bp"][0].tiny_overrides(), "gils_down": "strided"}
    )
    assert model.backbone.out_features[0] == "dark2"
    assert model.bpfpn.shortcut.down.conv.stride == (2, 2)
    model, _ = build_model("mf-baseline", ZOO["mf-baseline"][0].tiny_overrides())
    assert model.bpfpn is None


@pytest.mark.parametrize("host", ["yolox-s", "mf-baseline"])
def test_parameter_overhead_below_two_percent_at_width_half(host):
    base, _ = build_model(host, {"width": 0.5})
    plugged, _ = build_model(host, {"width": 0.5, "gils": "gils", "loss": {"dgr": "a"}})
    overhead = count_parameters(plugged) - count_parameters(base)
    assert overhead == count_parameters(plugged.bpfpn) > 0
    assert overhead / count_parameters(base) < 0.02


@pytest.mark.parametrize("host", HOSTS)
def test_streaming_frame_encoders_include_the_shortcut(host):
    from mistd.models.detectors.mf_baseline import BaselineFrameEncoder
    from mistd.models.detectors.yolox import YOLOXFrameEncoder

    model, cfg = _tiny(host, gils="gils")
    torch.nn.init.normal_(model.bpfpn.shortcut.fuse.weight, std=0.1)  # as after training
    model.eval()
    frames = _clip(cfg).flatten(0, 1)
    with torch.no_grad():
        if host == "yolox-s":
            expected = model.head(list(model.levels(frames)))
            got = YOLOXFrameEncoder(model)(frames)
            assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
            # and the shortcut does change the maps once `fuse` is non-zero
            plain = model.head(list(model.neck(model.backbone(frames))))
            assert not torch.equal(plain[0], got[0])
        else:
            folded = model.fold(model.levels(frames))[0]
            if host == "mf-baseline":
                assert torch.equal(BaselineFrameEncoder(model)(frames)[0], folded)
            else:
                assert torch.equal(
                    model.frame_features(frames),
                    model.early_fusion(*model.fold(model.levels(frames))),
                )
            plain = model.fold(model.neck(model.backbone(frames)))[0]
            assert not torch.equal(plain, folded)


@pytest.mark.slow
@pytest.mark.parametrize("down", ["unshuffle", "strided"])
def test_onnx_export_of_a_trained_shortcut_matches_torch(down, tmp_path):
    pytest.importorskip("onnxruntime")
    from mistd.inference.export import export_clip_onnx
    from mistd.inference.onnx_backend import OnnxClipModel

    model, cfg = _tiny("yolox-s", gils="gils", gils_down=down, loss={"dgr": "b"})
    torch.nn.init.normal_(model.bpfpn.shortcut.fuse.weight, std=0.1)  # non-zero: branch exported
    path = export_clip_onnx(model, tmp_path / "m.onnx", tuple(cfg.input_size))
    clip = _clip(cfg)
    with torch.no_grad():
        expected = model(clip)
    got = OnnxClipModel(path)(clip)
    for a, b in zip(got, expected, strict=True):
        assert float((a - b).norm() / b.norm()) < 1e-4
