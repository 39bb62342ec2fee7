"""YOLOX parts: shapes, reported output shapes, official parameter names and counts, decoding."""

from __future__ import annotations

import math

import pytest
import torch

from mistd.decoding import decode_outputs, make_grids
from mistd.models.backbones.cspdarknet import CSPDarknet
from mistd.models.blocks import BaseConv, CSPLayer, Focus, SPPBottleneck
from mistd.models.heads.yolox_head import YOLOXHead
from mistd.models.necks.fold import TopDownFold
from mistd.models.necks.pafpn import PAFPN


def test_baseconv_matches_yolox_settings():
    conv = BaseConv(3, 8, 3, 2)
    assert conv.conv.bias is None
    assert conv.bn.eps == pytest.approx(1e-3) and conv.bn.momentum == pytest.approx(0.03)
    assert conv(torch.randn(1, 3, 16, 16)).shape == (1, 8, 8, 8)


def test_focus_phase_order():
    # Focus stacks the 2x2 phases as (top-left, bottom-left, top-right, bottom-right).
    focus = Focus(1, 4)
    with torch.no_grad():
        focus.conv.conv.weight.copy_(torch.eye(4).reshape(4, 4, 1, 1))
    focus.conv.bn.eval()
    focus.conv.act = torch.nn.Identity()
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    out = focus(x) * math.sqrt(1 + 1e-3)  # undo BN's 1/sqrt(var + eps) with var 1
    assert out[0, :, 0, 0].tolist() == pytest.approx([0.0, 4.0, 1.0, 5.0], abs=1e-4)


def test_csp_and_spp_keep_official_nesting():
    csp = CSPLayer(16, 16, num_blocks=2)
    keys = set(csp.state_dict())
    assert {"conv1.conv.weight", "conv2.bn.weight", "conv3.conv.weight"} <= keys
    assert {"m.0.conv1.conv.weight", "m.1.conv2.conv.weight"} <= keys
    spp = SPPBottleneck(16, 16)
    assert {"conv1.conv.weight", "conv2.conv.weight"} <= set(spp.state_dict())
    assert len(spp.m) == 3
    assert spp(torch.randn(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_backbone_output_shape_matches_forward_including_c2():
    backbone = CSPDarknet(depth=0.33, width=0.25, out_features=("dark2", "dark3", "dark4", "dark5"))
    feats = backbone(torch.randn(2, 3, 64, 64))
    assert list(feats) == ["dark2", "dark3", "dark4", "dark5"]
    for name, (channels, stride) in backbone.output_shape().items():
        assert feats[name].shape == (2, channels, 64 // stride, 64 // stride)
    assert backbone.output_shape()["dark2"] == (32, 4)
    with pytest.raises(ValueError):
        CSPDarknet(out_features=("dark6",))


def test_backbone_state_dict_names_follow_yolox():
    keys = list(CSPDarknet(depth=0.33, width=0.5).state_dict())
    assert keys[0] == "stem.conv.conv.weight"
    assert "dark5.1.conv1.conv.weight" in keys  # SPP
    assert "dark5.2.m.0.conv2.conv.weight" in keys  # last CSP
    assert "dark3.1.m.2.conv1.conv.weight" in keys  # 3 bottlenecks at depth 0.33


def test_yolox_s_parameter_count_is_the_published_one():
    # YOLOX-S (80 classes) has 8.97 M parameters (YOLOX model zoo); exact count 8,968,255.
    backbone = CSPDarknet(depth=0.33, width=0.5)
    neck = PAFPN(in_shapes=backbone.output_shape(), depth=0.33)
    head = YOLOXHead(
        num_classes=80, in_channels=(128, 256, 512), strides=(8, 16, 32), hidden_channels=128
    )
    total = sum(p.numel() for m in (backbone, neck, head) for p in m.parameters())
    assert total == 8_968_255


def test_pafpn_and_fold_shapes():
    backbone = CSPDarknet(depth=0.33, width=0.25)
    neck = PAFPN(in_shapes=backbone.output_shape(), depth=0.33)
    p3, p4, p5 = neck(backbone(torch.randn(1, 3, 64, 96)))
    assert neck.output_shape() == {"p3": (64, 8), "p4": (128, 16), "p5": (256, 32)}
    assert p3.shape == (1, 64, 8, 12) and p4.shape == (1, 128, 4, 6) and p5.shape == (1, 256, 2, 3)
    folded, y, p5_out = TopDownFold(in_channels=(64, 128, 256))((p3, p4, p5))
    assert folded.shape == p3.shape and y.shape == p4.shape and p5_out is p5


def test_fold_uses_official_parameter_layout():
    keys = set(TopDownFold(in_channels=(128, 256, 512)).state_dict())
    assert keys == {
        "upsample_p5.1.weight",
        "upsample_p5.1.bias",
        "fuse_p4.weight",
        "fuse_p4.bias",
        "upsample_p4.1.weight",
        "upsample_p4.1.bias",
        "fuse_p3.weight",
        "fuse_p3.bias",
    }


def test_head_outputs_and_prior_bias():
    head = YOLOXHead(num_classes=3, in_channels=(16, 32), strides=(8, 16), hidden_channels=8)
    outs = head([torch.randn(2, 16, 8, 8), torch.randn(2, 32, 4, 4)])
    assert [o.shape for o in outs] == [(2, 8, 8, 8), (2, 8, 4, 4)]
    assert torch.sigmoid(head.obj_preds[0].bias).item() == pytest.approx(0.01)
    assert torch.sigmoid(head.cls_preds[1].bias).tolist() == pytest.approx([0.01] * 3)
    assert {"stems.0.conv.weight", "cls_convs.1.1.bn.weight", "reg_preds.0.bias"} <= set(
        head.state_dict()
    )


def test_decode_outputs_formula():
    raw = torch.zeros(1, 6, 2, 3)  # one class, 2x3 cells at stride 8
    raw[0, 0, 1, 2] = 0.5  # x offset
    raw[0, 1, 1, 2] = -0.25  # y offset
    raw[0, 2, 1, 2] = math.log(2.0)  # w = 2 strides
    raw[0, 4, 1, 2] = 2.0  # obj logit
    decoded = decode_outputs([raw], (8,))
    assert decoded.shape == (1, 6, 6)
    cell = 1 * 3 + 2  # row-major
    cx, cy, w, h, obj, cls = decoded[0, cell].tolist()
    assert (cx, cy) == pytest.approx(((2 + 0.5) * 8, (1 - 0.25) * 8))
    assert (w, h) == pytest.approx((16.0, 8.0))
    assert obj == pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert cls == pytest.approx(0.5)
    grid, stride = make_grids([raw, torch.zeros(1, 6, 1, 1)], (8, 16))
    assert grid.shape == (7, 2) and stride.tolist() == [8.0] * 6 + [16.0]
