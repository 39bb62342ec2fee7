"""Deployable ONNX (`export_deploy_onnx`) run by the torch-free `OnnxDetector`: the same
detections as the torch streaming predictor, metadata a deployer can read, and no torch import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from mistd.data.transforms import letterbox as torch_letterbox
from mistd.errors import InputError
from mistd.frames import to_gray
from mistd.inference.export import export_clip_onnx, export_deploy_onnx
from mistd.inference.onnx_runtime import OnnxDetector, letterbox
from mistd.inference.video_predictor import VideoPredictor
from mistd.models.zoo import ZOO, build_model

pytest.importorskip("onnxruntime")

SIZE = (64, 96)
NAMES = ["airplane", "drone"]


def tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dict(ZOO[name][0].tiny_overrides(), input_size=list(SIZE), num_classes=2, **overrides)
    model, _ = build_model(name, cfg)
    return model.eval()


def frames(n: int, shape=(50, 80), dtype=np.uint8, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535
    base = rng.integers(0, top // 2, shape)
    out = []
    for k in range(n):
        frame = base.copy()
        frame[20 + k : 24 + k, 30 + k : 34 + k] = top  # a moving bright target
        out.append(frame.astype(dtype))
    return out


def assert_same(got, want, min_score: float = 0.01) -> None:
    """Detections above `min_score` equal (boxes to 1e-3 px, scores to 1e-4 relative)."""
    boxes, scores, labels = got
    keep = scores >= min_score
    want_keep = want.scores.numpy() >= min_score
    assert keep.sum() == want_keep.sum()
    np.testing.assert_allclose(scores[keep], want.scores.numpy()[want_keep], rtol=1e-4)
    np.testing.assert_allclose(boxes[keep], want.boxes.numpy()[want_keep], atol=1e-3)
    np.testing.assert_array_equal(labels[keep], want.labels.numpy()[want_keep])


@pytest.mark.parametrize(
    "name, overrides, nms",
    [
        ("yolox-s", {}, False),
        ("mf-baseline", {}, True),
        ("mf-residual", {"frame_stride": 2}, False),
        ("chal", {}, True),
    ],
)
def test_onnx_detector_streams_as_torch(name, overrides, nms, tmp_path):
    model = tiny(name, **overrides)
    stride = getattr(model, "frame_stride", 1)
    path = export_deploy_onnx(
        model, tmp_path / "m.onnx", SIZE, class_names=NAMES, nms_iou=0.65 if nms else None
    )
    detector = OnnxDetector(path, threads=1)
    assert detector.names == NAMES
    assert (detector.num_frames, detector.frame_stride) == (model.num_frames, stride)
    assert detector.input_size == SIZE
    assert detector.nms_in_graph == nms
    predictor = VideoPredictor(model, input_size=SIZE)
    clip = frames(6)
    for got, frame in zip(detector.predict_frames(clip), clip, strict=True):
        assert_same(got, predictor.push(frame))
    # one clip of frames `frame_stride` apart = the stream at its key frame
    span = clip[::-stride][: model.num_frames][::-1]
    assert_same(detector.predict_clip(np.stack(span)), clip_reference(model, span))
    # a new sequence starts afresh
    detector.reset()
    predictor.reset()
    assert_same(detector.push(clip[3]), predictor.push(clip[3]))


def clip_reference(model, clip):
    """Torch detections of the key frame of `clip` (frames already `frame_stride` apart)."""
    predictor = VideoPredictor(model, input_size=SIZE, frame_stride=1)
    for frame in clip:
        out = predictor.push(frame)
    return out


def test_several_streams_in_one_forward_equal_separate_streams(tmp_path):
    model = tiny("mf-residual", frame_stride=2)
    path = export_deploy_onnx(model, tmp_path / "m.onnx", SIZE, class_names=NAMES)
    together, alone = OnnxDetector(path), [OnnxDetector(path), OnnxDetector(path)]
    a, b = frames(7, seed=1), frames(7, seed=2)
    for k in range(7):
        if k == 4:  # stream 1 starts another sequence; stream 0 goes on
            together.reset(1)
            alone[1].reset()
        got = together.push_streams([a[k], b[k]])
        for stream, (frame, one) in enumerate(zip((a[k], b[k]), alone, strict=True)):
            want = one.push(frame)
            np.testing.assert_allclose(got[stream][1], want[1], rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(got[stream][0], want[0], atol=1e-3)


def test_metadata_states_the_preprocessing_and_size_rule(tmp_path):
    model = tiny("chal")
    check = {"regrow": True, "contrast_scale": 30.0}
    path = export_deploy_onnx(
        model, tmp_path / "m.onnx", SIZE, class_names=NAMES, dynamic=True, frame_check=check
    )
    meta = OnnxDetector(path).metadata
    assert meta["names"] == NAMES
    assert meta["frame_check"] == check  # the Predictor's stage reads it (test_predictor.py)
    assert meta["size_multiple"] == 32
    assert meta["min_input_size"] == list(model.min_export_size()) == [32, 32]
    assert meta["preprocess"]["pad_value"] == 128.0
    assert meta["preprocess"]["mean"] == [0.485, 0.456, 0.406]
    assert meta["precision"] == "fp32"
    # a dynamic-size graph takes another multiple of 32 (and streams there) ...
    detector = OnnxDetector(path, input_size=(96, 128))
    predictor = VideoPredictor(model, input_size=(96, 128))
    for frame in frames(3):
        assert_same(detector.push(frame), predictor.push(frame))
    # ... but not a size off the rule
    with pytest.raises(InputError, match="multiples of 32 of at least 32x32, got 96x100"):
        OnnxDetector(path, input_size=(96, 100))


def test_preprocessing_matches_the_torch_pipeline():
    for dtype, depth in ((np.uint8, 8), (np.uint16, 16)):
        frame = frames(1, (37, 90), dtype)[0]
        got, _ = letterbox(frame, SIZE, depth)
        want, _ = torch_letterbox(frame, SIZE)
        np.testing.assert_array_equal(got, want)
    gray = frames(1)[0]
    np.testing.assert_array_equal(to_gray(np.repeat(gray[..., None], 3, axis=2)), gray)
    with pytest.raises(ValueError, match=r"got shape \(2, 50, 80\)"):
        to_gray(np.zeros((2, 50, 80), np.uint8))


def test_fixed_size_and_raw_graphs_are_refused_with_a_reason(tmp_path):
    model = tiny("yolox-s")
    path = export_deploy_onnx(model, tmp_path / "m.onnx", SIZE)
    with pytest.raises(InputError, match="exported for 64x96 inputs, asked for 96x96"):
        OnnxDetector(path, input_size=(96, 96))
    raw = export_clip_onnx(model, tmp_path / "raw.onnx", SIZE)
    with pytest.raises(InputError, match="not a deployable mistd graph"):
        OnnxDetector(raw)


def test_running_an_onnx_file_never_imports_torch(tmp_path):
    path = export_deploy_onnx(tiny("mf-baseline"), tmp_path / "m.onnx", SIZE, class_names=NAMES)
    np.save(tmp_path / "frames.npy", np.stack(frames(3)))
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from mistd.inference.onnx_runtime import OnnxDetector
        detector = OnnxDetector({str(path)!r}, threads=1)
        results = detector.predict_frames(list(np.load({str(tmp_path / "frames.npy")!r})))
        assert len(results) == 3 and results[-1][0].shape[1] == 4, results
        assert detector.names == {NAMES!r}
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
