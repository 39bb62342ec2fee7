"""int8 deployable graphs: a shipped model quantized on real training frames keeps its detections
on held-out real frames within a stated tolerance, and says how it was calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.errors import InputError
from mistd.inference.detector import load_detector
from mistd.inference.export import export_deploy_onnx
from mistd.inference.onnx_runtime import OnnxDetector
from mistd.inference.quantize import calibration_frames, quantize_int8

pytest.importorskip("onnxruntime")

# Tolerance of int8 against fp32 on the same frames: the best detection's score within 0.05
# (absolute) and its box within 1.5 px (at 320x256); `benchmarks/quantization.py` measures
# what this costs in mAP50.
SCORE_TOLERANCE = 0.05
BOX_TOLERANCE = 1.5


def iou(a: np.ndarray, b: np.ndarray) -> float:
    x1, y1 = np.maximum(a[:2], b[:2])
    x2, y2 = np.minimum(a[2:], b[2:])
    inter = max(x2 - x1, 0) * max(y2 - y1, 0)
    area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    return float(inter / (area - inter))


@pytest.mark.slow
def test_int8_keeps_the_fp32_detections(tmp_path, shared_dir):
    data = shared_dir / "data" / "real" / "drone_ir"
    detector = load_detector("mf-baseline-ir-s")
    fp32 = export_deploy_onnx(
        detector.model,
        tmp_path / "fp32.onnx",
        detector.input_size,
        class_names=detector.config["data"]["class_names"],
    )
    # 60 frames: 6 runs of 10 consecutive frames from train clips spread over the split (20
    # frames from 2 clips gave ranges that moved a drone's score by 0.24)
    runs, description = calibration_frames([f"{data}:train"], total=60)
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", runs, description)
    a, b = OnnxDetector(fp32, threads=1), OnnxDetector(int8, threads=1)
    assert b.precision == "int8"
    calibration = b.metadata["calibration"]
    assert calibration["frames"] == 60 and calibration["sources"][0]["runs"] == 6
    assert "QDQ" in calibration["method"] and "per output channel" in calibration["weights"]
    # a val clip (never calibrated on): the clip's drone in every frame
    from mistd.data.video import iter_video_frames

    video = data / "videos" / "IR_DRONE_013.mp4"
    frames = [f for _, f in zip(range(8), iter_video_frames(video), strict=False)]
    for (boxes_a, scores_a, labels_a), (boxes_b, scores_b, labels_b) in zip(
        a.predict_frames(frames), b.predict_frames(frames), strict=True
    ):
        assert scores_a[0] > 0.3  # the frame has a confident fp32 detection to compare
        assert abs(scores_b[0] - scores_a[0]) < SCORE_TOLERANCE
        assert labels_b[0] == labels_a[0]
        assert np.abs(boxes_b[0] - boxes_a[0]).max() < BOX_TOLERANCE
        assert iou(boxes_a[0], boxes_b[0]) > 0.8


def test_calibration_needs_a_source():
    with pytest.raises(InputError, match="int8 needs calibration frames"):
        calibration_frames(None)


def test_calibration_feeds_each_frame_at_the_size_the_graph_runs_it(tmp_path):
    """A graph exported with a dynamic size runs at the frame's own size (padded to x32), so its
    activation ranges are calibrated there; a fixed-size graph sees the frames letterboxed."""
    import torch

    from mistd.inference.quantize import _StreamReader
    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    rng = np.random.default_rng(0)
    runs = [[(rng.integers(0, 255, (70, 100), dtype=np.uint8), 8)] * 2]
    runs.append([(rng.integers(0, 255, (130, 40), dtype=np.uint8), 8)])
    for dynamic, sizes in ((True, [(96, 128), (96, 128), (160, 64)]), (False, [(64, 96)] * 3)):
        path = export_deploy_onnx(
            model.eval(), tmp_path / f"{dynamic}.onnx", (64, 96), dynamic=dynamic
        )
        reader = _StreamReader(path, runs)
        feeds = [reader.get_next() for _ in range(3)]
        assert reader.get_next() is None
        assert [f["frame"].shape[1:] for f in feeds] == sizes


def test_a_dense_graph_quantizes_its_layers_only(tmp_path):
    """tinyseg's deployable graph: its encoder / decoder / output convs are quantized, the frame's
    standardisation and the sigmoids stay fp32; a setting that leaves no layer is refused
    (onnxruntime would read the empty list as "every node")."""
    import onnx
    import torch

    from mistd.inference.quantize import quantizable_nodes
    from mistd.models.zoo import build_model

    torch.manual_seed(0)
    model, _ = build_model("tinyseg", {"widths": [4, 8, 16], "input_size": [64, 64]})
    fp32 = export_deploy_onnx(model.eval(), tmp_path / "fp32.onnx", (64, 64), dynamic=True)
    layers = quantizable_nodes(fp32)
    assert layers and all(n.startswith(("/encoder.", "/decoder.", "/out/")) for n in layers)
    assert not any("Sigmoid" in n or "ReduceMean" in n for n in layers)
    rng = np.random.default_rng(0)
    runs = [[(rng.integers(0, 255, (64, 96), dtype=np.uint8), 8)] for _ in range(2)]
    int8 = quantize_int8(fp32, tmp_path / "int8.onnx", runs, {"sources": "random"}, keep_fp32=())
    graph = onnx.load(str(int8)).graph
    # QDQ: a quantized op reads DequantizeLinear outputs and feeds a QuantizeLinear
    requantized = {i for n in graph.node if n.op_type == "QuantizeLinear" for i in n.input}
    dequantized = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    sigmoids = [n for n in graph.node if n.op_type == "Sigmoid"]
    assert len(sigmoids) == 2 and not any(set(n.output) & requantized for n in sigmoids)
    means = [n for n in graph.node if n.op_type == "ReduceMean"]  # the frame's standardisation
    assert means and not any(set(n.input) & dequantized for n in means)
    convs = [n for n in graph.node if n.op_type == "Conv"]
    assert convs and all(set(n.input) & dequantized for n in convs)  # every layer quantized
    boxes, scores, _ = OnnxDetector(int8, threads=1).push(runs[0][0][0])
    assert len(boxes) == len(scores)
    with pytest.raises(InputError, match="no layer left to quantize"):
        quantize_int8(fp32, tmp_path / "none.onnx", runs, {}, keep_fp32=("/",))


def test_histogram_ranges_refuse_calibration_frames_of_several_sizes(tmp_path):
    """percentile / entropy ranges: onnxruntime stacks every frame's tensors, so frames that run
    at different sizes (a dynamic graph) fail inside it; refused first, with the sizes named."""
    import torch

    from mistd.models.zoo import ZOO, build_model

    torch.manual_seed(0)
    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    fp32 = export_deploy_onnx(model.eval(), tmp_path / "fp32.onnx", (64, 96), dynamic=True)
    rng = np.random.default_rng(0)
    runs = [[(rng.integers(0, 255, (64, 96), dtype=np.uint8), 8)]]
    runs.append([(rng.integers(0, 255, (130, 40), dtype=np.uint8), 8)])
    with pytest.raises(InputError, match=r"one size .* 64x96, 160x64"):
        quantize_int8(fp32, tmp_path / "int8.onnx", runs, {}, method="percentile")
    assert not (tmp_path / "int8.onnx").exists()
