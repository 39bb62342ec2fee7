"""ONNX export + onnxruntime backend: every zoo model's clip graph and its two streaming graphs
reproduce torch (relative error < 1e-4), with a dynamic batch."""

from __future__ import annotations

import warnings

import pytest
import torch

from mistd.inference.export import export_clip_onnx, export_streaming_onnx
from mistd.inference.onnx_backend import OnnxClipModel, OnnxStreamingParts, read_metadata
from mistd.inference.video_predictor import VideoPredictor
from mistd.models.zoo import ZOO, build_model

pytest.importorskip("onnxruntime")

SIZE = (64, 64)


def tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = build_model(name, dict(ZOO[name][0].tiny_overrides(), input_size=list(SIZE)))
    return model.eval()


def relative_error(outputs: list[torch.Tensor], expected: list[torch.Tensor]) -> float:
    assert len(outputs) == len(expected)
    worst = 0.0
    for o, e in zip(outputs, expected, strict=True):
        assert o.shape == e.shape
        worst = max(worst, float((o - e).norm() / e.norm()))
    return worst


# chal-paper (two Swin layers, shifted) is covered by the dynamic-size test below.
@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ZOO if n != "chal-paper"])
def test_exported_graphs_match_torch(name, tmp_path):
    model = tiny(name)
    path = export_clip_onnx(model, tmp_path / f"{name}.onnx", SIZE)
    frame_path, clip_path = export_streaming_onnx(model, path, SIZE)
    assert read_metadata(path)["num_frames"] == model.num_frames
    assert read_metadata(frame_path)["graph"] == "frame"
    assert read_metadata(clip_path)["strides"] == list(model.strides)
    # exported with batch 1, run with batch 2 (dynamic batch)
    clip = torch.randn(2, model.num_frames, 3, *SIZE)
    with torch.no_grad():
        expected = model(clip)
    assert not model.training  # exporting must not flip the model to train mode
    assert relative_error(OnnxClipModel(path)(clip), expected) < 1e-4
    encoder, head = OnnxStreamingParts.from_export(path)
    features = encoder(clip.flatten(0, 1))
    stacked = [f.reshape(2, model.num_frames, *f.shape[1:]) for f in features]
    assert relative_error(head(*stacked), expected) < 1e-4


@pytest.mark.slow
def test_dynamic_size_and_onnx_streaming_predictor(tmp_path):
    model = tiny("chal-paper")  # two Swin layers, the second shifted
    path = export_clip_onnx(model, tmp_path / "chal.onnx", SIZE, dynamic=True)
    export_streaming_onnx(model, path, SIZE, dynamic=True)
    clip = torch.randn(1, model.num_frames, 3, 96, 128)  # another size than exported
    with torch.no_grad():
        expected = model(clip)
    assert relative_error(OnnxClipModel(path)(clip), expected) < 1e-4
    # streaming with onnxruntime = streaming with torch (one encoder pass per frame)
    frames = torch.randn(4, 3, 96, 128)
    onnx_predictor = VideoPredictor(
        model, input_size=(96, 128), parts=OnnxStreamingParts.from_export(path)
    )
    torch_predictor = VideoPredictor(model, input_size=(96, 128))
    for frame in frames:
        got = onnx_predictor.push_torch_raw(frame)
        want = torch_predictor.push_torch_raw(frame)
        assert relative_error(got, want) < 1e-4


def test_missing_onnx_file_is_an_input_error(tmp_path):
    from mistd.errors import InputError

    with pytest.raises(InputError, match="mistd export"):
        OnnxClipModel(tmp_path / "absent.onnx")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["yolox-s", "chal"])
def test_export_emits_no_other_warning(name, tmp_path):
    """Only the warnings `export._ignore_known_export_warnings` names: any other one fails."""
    model = tiny(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = export_clip_onnx(model, tmp_path / f"{name}.onnx", SIZE)
        export_streaming_onnx(model, path, SIZE)
