"""mf-residual: a yolox-s checkpoint loads into it and, before training, it IS that detector."""

from __future__ import annotations

import pytest
import torch

from mistd.errors import InputError
from mistd.models.zoo import ZOO, build_model

TINY = {**ZOO["yolox-s"][0].tiny_overrides(), "input_size": [64, 96]}


def test_starts_as_the_single_frame_model_it_is_loaded_from():
    torch.manual_seed(0)
    single, _ = build_model("yolox-s", TINY)
    multi, _ = build_model("mf-residual", {**TINY, "num_frames": 3})
    result = multi.load_state_dict(single.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert all(k.startswith("temporal.") for k in result.missing_keys)
    single.eval()
    multi.eval()
    clip = torch.randn(2, 3, 3, 64, 96)
    with torch.no_grad():
        for a, b in zip(multi(clip), single(clip), strict=True):
            assert torch.equal(a, b)


def test_past_frames_change_the_output_once_the_residual_is_trained():
    torch.manual_seed(0)
    model, _ = build_model("mf-residual", {**TINY, "num_frames": 3})
    torch.nn.init.normal_(model.temporal.out.weight, std=0.1)
    model.eval()
    clip = torch.randn(1, 3, 3, 64, 96)
    moved = clip.clone()
    moved[:, 0] = torch.randn(1, 3, 64, 96)  # only the oldest frame differs
    with torch.no_grad():
        p3 = [model.levels(c.flatten(0, 1))[0].unflatten(0, (1, 3)) for c in (clip, moved)]
        residuals = [model.temporal(p) for p in p3]
        change = (residuals[0] - residuals[1]).abs().mean()
        assert change > 0.1 * residuals[0].abs().mean() > 0
        # the P5 map is the key frame's own
        assert torch.equal(model(clip)[2], model(moved)[2])


def test_loss_trains_the_residual():
    torch.manual_seed(0)
    model, _ = build_model("mf-residual", {**TINY, "num_frames": 2})
    clip = torch.randn(2, 2, 3, 64, 96)
    targets = [torch.tensor([[0, 30.0, 20.0, 8.0, 6.0]]), torch.zeros(0, 5)]
    model.loss(clip, targets)["total"].backward()
    assert model.temporal.out.weight.grad.abs().sum() > 0


def test_one_frame_is_refused():
    with pytest.raises(InputError, match="num_frames must be >= 2"):
        build_model("mf-residual", {**TINY, "num_frames": 1})
