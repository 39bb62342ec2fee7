"""The stride-4 level (`model.p2=true`): shapes, loss, and loading weights trained without it."""

from __future__ import annotations

import pytest
import torch

from mistd.models.zoo import build_model


@pytest.mark.parametrize("name", ["yolox-s", "mf-residual"])
def test_p2_adds_a_stride_4_level_and_trains(name):
    torch.manual_seed(0)
    model, cfg = build_model(name, {"width": 0.125, "p2": True, "input_size": [64, 64]})
    clip = torch.randn(2, cfg.num_frames, 3, 64, 96)
    outputs = model(clip)
    assert model.strides == (8, 16, 32, 4)
    assert [tuple(o.shape[-2:]) for o in outputs] == [(8, 12), (4, 6), (2, 3), (16, 24)]
    losses = model.loss(clip, [torch.tensor([[0, 30.0, 30.0, 3.0, 3.0]]), torch.zeros(0, 5)])
    losses["total"].backward()
    assert model.p2.fuse.conv1.conv.weight.grad.abs().sum() > 0
    assert len(model.predict(clip)) == 2


def test_checkpoint_without_p2_loads_into_every_other_part():
    torch.manual_seed(0)
    plain, _ = build_model("yolox-s", {"width": 0.125})
    torch.manual_seed(0)
    with_p2, _ = build_model("yolox-s", {"width": 0.125, "p2": True})
    source = plain.state_dict()
    target = with_p2.state_dict()
    shared = [k for k in source if k in target and source[k].shape == target[k].shape]
    # every tensor of the plain model has its twin (P3-P5 head layers keep their indices)
    assert len(shared) == len(source)
    assert all(k.startswith("p2.") or ".3." in k for k in set(target) - set(source))
