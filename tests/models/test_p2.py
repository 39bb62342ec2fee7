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


def test_chal_p2_reads_the_gated_key_frame_and_streams_as_its_clip_forward(tmp_path):
    """CHAL's stride-4 level: a second head level after the temporal parts (strides 8, 4); a
    checkpoint of the official model loads into every other part (same names, same shapes);
    streaming, the deployable ONNX graph and the clip forward agree."""
    from mistd.inference.export import export_deploy_onnx
    from mistd.inference.onnx_backend import check_deploy_graph
    from mistd.inference.streaming import streaming_parts
    from mistd.models.zoo import ZOO

    tiny = ZOO["chal"][0].tiny_overrides()
    torch.manual_seed(0)
    plain, _ = build_model("chal", tiny)
    torch.manual_seed(0)
    model, cfg = build_model("chal", {**tiny, "p2": True})
    assert model.strides == (8, 4)
    source, target = plain.state_dict(), model.state_dict()
    assert all(k in target and target[k].shape == v.shape for k, v in source.items())
    assert all(k.startswith(("stride_four.", "head.")) for k in set(target) - set(source))
    clip = torch.rand(2, cfg.num_frames, 3, 64, 96)
    losses = model.loss(clip, [torch.tensor([[0, 30.0, 30.0, 3.0, 3.0]]), torch.zeros(0, 5)])
    losses["total"].backward()
    assert model.stride_four.fuse.conv1.conv.weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        outputs = model(clip)
        assert [tuple(o.shape[-2:]) for o in outputs] == [(8, 12), (16, 24)]
        encoder, head = streaming_parts(model)
        features = [f.unflatten(0, clip.shape[:2]) for f in encoder(clip.flatten(0, 1))]
        for a, b in zip(outputs, head(*features), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    path = export_deploy_onnx(model, tmp_path / "chal_p2.onnx", (64, 64), dynamic=True)
    assert check_deploy_graph(model, path, (64, 96)) < 1e-4
