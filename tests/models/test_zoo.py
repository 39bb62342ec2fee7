"""Every zoo entry, built small: forward shapes, finite loss with gradients, predict.

Adding a model to `mistd.models.zoo.ZOO` (with a `tiny_overrides()` classmethod on its config)
gets it tested here automatically.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mistd.errors import InputError
from mistd.models.zoo import ZOO, build_model
from mistd.structures import Detections

BATCH = 2


def _tiny(name: str):
    config_cls, _ = ZOO[name]
    torch.manual_seed(0)
    return build_model(name, config_cls.tiny_overrides())


def _clip(cfg) -> torch.Tensor:
    h, w = cfg.input_size
    return torch.randn(BATCH, cfg.num_frames, 3, h, w)


def _targets(cfg) -> list[torch.Tensor]:
    # image 0: two targets (one partly outside the image); image 1: no target
    h, w = cfg.input_size
    return [
        torch.tensor([[0.0, w * 0.4, h * 0.5, 6.0, 6.0], [0.0, 1.0, h * 0.3, 8.0, 5.0]]),
        torch.zeros(0, 5),
    ]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_config_is_a_dataclass_with_the_shared_fields(name):
    config_cls, builder = ZOO[name]
    assert dataclasses.is_dataclass(config_cls) and callable(builder)
    cfg = config_cls()
    for key in ("num_classes", "num_frames", "input_size"):
        assert hasattr(cfg, key), f"{name}: config lacks '{key}'"
    assert isinstance(config_cls.tiny_overrides(), dict)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_forward_loss_backward_predict(name):
    model, cfg = _tiny(name)
    clip = _clip(cfg)
    h, w = cfg.input_size

    model.train()
    outputs = model(clip)
    if hasattr(model, "head"):  # YOLOX head maps, one per stride
        assert isinstance(outputs, list) and len(outputs) == len(model.strides)
        for out, stride in zip(outputs, model.strides, strict=True):
            assert out.shape == (BATCH, 5 + cfg.num_classes, h // stride, w // stride)
    else:  # a dense map per class at full resolution (tinyseg)
        assert outputs.shape == (BATCH, cfg.num_classes, h, w)
    assert model.num_classes == cfg.num_classes

    losses = model.loss(clip, _targets(cfg))
    assert "total" in losses and torch.isfinite(losses["total"])
    assert losses["num_fg"].item() >= 2
    losses["total"].backward()
    params = [p for p in model.parameters() if p.requires_grad]
    with_grad = [p for p in params if p.grad is not None]
    assert len(with_grad) >= 0.5 * len(params)
    assert all(torch.isfinite(p.grad).all() for p in with_grad)

    model.eval()
    detections = model.predict(clip, decode_floor=0.0, nms_iou=0.65)
    assert len(detections) == BATCH
    for det in detections:
        assert isinstance(det, Detections) and len(det) > 0
        assert det.boxes.shape == (len(det), 4)
        assert ((det.scores >= 0) & (det.scores <= 1)).all()
        assert ((det.labels >= 0) & (det.labels < cfg.num_classes)).all()
        assert (det.scores[:-1] >= det.scores[1:]).all()


def test_unknown_name_and_key_are_input_errors():
    with pytest.raises(InputError, match="did you mean 'yolox-s'"):
        build_model("yolox_s")
    with pytest.raises(InputError, match="did you mean 'width'"):
        build_model("yolox-s", {"widht": 0.25})
    with pytest.raises(InputError, match="input_size"):
        build_model("mf-baseline", {"input_size": [100, 100]})


def test_overrides_reach_the_model():
    model, cfg = build_model(
        "mf-baseline", {"num_frames": 3, "width": 0.125, "loss": {"nwd_weight": 1.0}}
    )
    assert cfg.num_frames == 3 and model.num_frames == 3
    assert model.criterion.nwd_weight == 1.0
    assert model.temporal_fusion.conv.in_channels == 3 * 32
    with pytest.raises(ValueError, match="fuses 3 frames"):
        model(torch.randn(1, 2, 3, 64, 64))


def test_single_frame_yolox_uses_only_the_key_frame():
    model, cfg = _tiny("yolox-s")
    model.eval()
    clip = torch.randn(1, 3, 3, 64, 64)
    changed = clip.clone()
    changed[:, :-1] = 0.0  # earlier frames do not matter
    with torch.no_grad():
        assert torch.equal(model(clip)[0], model(changed)[0])
