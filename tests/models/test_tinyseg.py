"""TinySeg (`mistd.models.detectors.tinyseg`): painted boxes, blobs -> boxes, gain invariance,
and that it learns a 3x3 target in a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.boxes import blob_boxes
from mistd.errors import InputError
from mistd.models.detectors.tinyseg import paint_boxes
from mistd.models.zoo import build_model


def test_paint_boxes_covers_each_box_and_clips_it():
    targets = [
        torch.tensor([[0.0, 11.5, 20.5, 3.0, 3.0], [0.0, 1.0, 5.0, 8.0, 2.0]]),
        torch.zeros(0, 5),
    ]
    maps = paint_boxes(targets, num_classes=1, height=32, width=40)
    assert maps.shape == (2, 1, 32, 40)
    first = maps[0, 0]
    # a 3x3 box centred at (11.5, 20.5) covers columns 10-12 and rows 19-21
    assert first[19:22, 10:13].sum() == 9
    # the second box starts 3 px left of the image: columns 0-4, rows 4-5
    assert first[4:6, 0:5].sum() == 10
    assert first.sum() == 19 and maps[1].sum() == 0


def test_paint_boxes_gives_a_subpixel_box_one_pixel():
    maps = paint_boxes([torch.tensor([[0.0, 5.2, 6.2, 0.3, 0.3]])], 1, 16, 16)
    assert maps.sum() == 1


def _blob(prob: np.ndarray, cy: int, cx: int, peak: float, radius: int) -> None:
    prob[cy - radius : cy + radius + 1, cx - radius : cx + radius + 1] = peak / 2 + 0.01
    prob[cy, cx] = peak


def test_blob_boxes_one_box_per_blob_highest_first():
    prob = np.zeros((64, 64), np.float32)
    _blob(prob, 10, 12, 0.9, 1)  # 3x3 blob
    _blob(prob, 40, 50, 0.6, 2)  # 5x5 blob
    prob[41, 51] = 0.5  # a second local maximum inside the 5x5 blob: the same target
    boxes, scores = blob_boxes(prob, prob, decode_floor=0.05, mask_level=0.5, max_detections=10)
    np.testing.assert_allclose(scores, [0.9, 0.6])
    np.testing.assert_array_equal(boxes, [[11, 9, 14, 12], [48, 38, 53, 43]])
    boxes, _ = blob_boxes(prob, prob, decode_floor=0.05, mask_level=0.5, max_detections=1)
    assert len(boxes) == 1
    boxes, _ = blob_boxes(prob, prob, decode_floor=0.95, mask_level=0.5, max_detections=10)
    assert boxes.shape == (0, 4)


def test_a_plateau_is_one_candidate():
    """A flat region (a quantized map, constant padding) is one peak, not one per pixel."""
    prob = np.zeros((60, 80), np.float32)
    prob[10:30, 10:40] = 0.5
    prob[45, 60] = 0.9
    boxes, scores = blob_boxes(prob, prob, decode_floor=0.05, mask_level=0.5, max_detections=100)
    np.testing.assert_array_equal(boxes, [[60, 45, 61, 46], [10, 10, 40, 30]])
    np.testing.assert_allclose(scores, [0.9, 0.5])


def test_saturated_peaks_keep_distinct_scores():
    """Two blobs whose probability rounds to 1.0 are still ranked by their logits."""
    model, _ = build_model("tinyseg", {"widths": [4, 8, 16], "input_size": [32, 32]})
    model.eval()
    logits = torch.full((1, 1, 32, 32), -20.0)
    logits[0, 0, 5:8, 5:8] = 25.0
    logits[0, 0, 20:23, 20:23] = 40.0
    model.forward = lambda clip: logits
    assert torch.sigmoid(torch.tensor([25.0, 40.0])).eq(1.0).all()
    found = model.predict(torch.zeros(1, 1, 3, 32, 32))[0]
    assert found.boxes[:2].tolist() == [[20, 20, 23, 23], [5, 5, 8, 8]]
    assert 0.99 < found.scores[1] < found.scores[0] < 1.0


def test_output_ignores_the_frames_gain_and_offset():
    model, cfg = build_model("tinyseg", {"widths": [4, 8, 16], "input_size": [32, 32]})
    model.eval()
    clip = torch.rand(1, 1, 3, 32, 32) * 20.0  # a spread far above the standardisation's eps
    with torch.no_grad():
        np.testing.assert_allclose(model(clip), model(clip - 7.0), atol=1e-4)
        np.testing.assert_allclose(model(clip), model(3.0 * clip), atol=1e-3)


def test_input_sides_must_fit_the_levels():
    with pytest.raises(InputError, match="multiples of 64"):
        build_model("tinyseg", {"widths": [2] * 7, "input_size": [96, 96]})
    with pytest.raises(InputError, match="single-frame"):
        build_model("tinyseg", {"num_frames": 3})
    model, _ = build_model("tinyseg", {"widths": [4, 8, 16, 32], "input_size": [64, 64]})
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.rand(1, 1, 3, 64, 36))


def _scene(rng: np.random.Generator, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy frame `[1, 1, 3, H, W]` with one 3x3 bright target, and its target `[1, 5]`."""
    frame = rng.normal(0.0, 0.05, (size, size)).astype(np.float32)
    y, x = rng.integers(4, size - 4, 2)
    frame[y - 1 : y + 2, x - 1 : x + 2] += 0.6
    clip = torch.from_numpy(frame)[None, None, None].repeat(1, 1, 3, 1, 1)
    return clip, torch.tensor([[0.0, x + 0.5, y + 0.5, 3.0, 3.0]])


def test_learns_a_small_target_in_a_few_steps():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model, _ = build_model("tinyseg", {"widths": [8, 16, 32], "input_size": [64, 64]})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        scenes = [_scene(rng) for _ in range(4)]
        clip = torch.cat([c for c, _ in scenes])
        loss = model.loss(clip, [t for _, t in scenes])["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    found = 0
    for _ in range(10):
        clip, target = _scene(rng)
        detections = model.predict(clip, decode_floor=0.01)[0]
        cx, cy = target[0, 1:3]
        box = detections.boxes[0]
        found += bool((box[0] <= cx <= box[2]) and (box[1] <= cy <= box[3]))
    assert found >= 9


def _checkpoint(tmp_path) -> str:
    """A small trained-shape tinyseg checkpoint (random weights, input 64x64)."""
    from mistd.checkpoint import save_checkpoint
    from mistd.run_config import build_run_config, run_config_to_dict

    torch.manual_seed(0)
    overrides = {"widths": [4, 8, 16], "input_size": [64, 64]}
    model, _ = build_model("tinyseg", overrides)
    cfg = build_run_config("tinyseg", {"model": overrides})
    data = {"state_dict": model.state_dict(), "model": "tinyseg", "config": run_config_to_dict(cfg)}
    return str(save_checkpoint(tmp_path / "tinyseg.pt", data))


def test_predictor_runs_it_at_the_frames_own_size(tmp_path):
    from mistd.inference.predictor import Predictor

    predictor = Predictor(_checkpoint(tmp_path), keep_all=True)
    assert predictor.num_frames == 1 and predictor.learned
    frame = np.random.default_rng(0).integers(0, 255, (90, 130), dtype=np.uint8)
    results = predictor.push(frame)
    assert len(results) > 0
    # padded to 96x160, never resized: every box lies inside the frame
    assert (results.boxes[:, 2] <= 130).all() and (results.boxes[:, 3] <= 90).all()
    assert predictor.detector._window.detector.input_size == (96, 160)


def test_exports_the_deployable_graph_only(tmp_path):
    from mistd.inference import export

    model, _ = build_model("tinyseg", {"widths": [4, 8, 16], "input_size": [64, 64]})
    for write in (export.export_clip_onnx, export.export_streaming_onnx):
        with pytest.raises(InputError, match="deployable graph only.*drop --raw"):
            write(model, tmp_path / "x.onnx", (64, 64))
    assert not (tmp_path / "x.onnx").exists()


def _blob_frame() -> np.ndarray:
    """A 90x130 noisy frame with three bright 3x3 blobs (one at the edge)."""
    frame = np.random.default_rng(1).normal(60, 3, (90, 130))
    for y, x in ((20, 30), (60, 90), (88, 5)):
        frame[max(y - 1, 0) : y + 2, max(x - 1, 0) : x + 2] += 80
    return np.clip(frame, 0, 255).astype(np.uint8)


def test_deployable_graph_detects_as_torch_does(tmp_path):
    """The exported graph's maps, decoded by onnxruntime's detector, give the torch model's
    detections (boxes exactly, scores to 1e-5) at the frame's own size."""
    from mistd.inference.export import export_deploy_onnx
    from mistd.inference.onnx_backend import check_deploy_graph
    from mistd.inference.onnx_runtime import read_onnx_metadata
    from mistd.inference.predictor import Predictor

    checkpoint = _checkpoint(tmp_path)
    torch_predictor = Predictor(checkpoint, keep_all=True)
    model = torch_predictor.detector.model
    path = export_deploy_onnx(
        model, tmp_path / "tinyseg.onnx", (64, 64), dynamic=True, thresholds={"display": 0.4}
    )
    assert check_deploy_graph(model, path, (64, 96)) < 1e-4
    meta = read_onnx_metadata(path)
    assert meta["decoder"] == "blobs" and meta["blobs"]["max_detections"] == 100
    onnx_predictor = Predictor(str(path), keep_all=True, threads=1)
    assert onnx_predictor.thresholds.display == 0.4
    session = onnx_predictor.detector.runtime.session
    assert session.get_session_options().intra_op_num_threads == 1
    frame = _blob_frame()
    expected, got = torch_predictor.push(frame), onnx_predictor.push(frame)
    top = min(len(expected), 10)
    assert top > 0 and len(got) >= top
    np.testing.assert_array_equal(got.boxes[:top], expected.boxes[:top])
    np.testing.assert_allclose(got.scores[:top], expected.scores[:top], atol=1e-5)
    assert (got.boxes[:, 2] <= 130).all() and (got.boxes[:, 3] <= 90).all()


def test_input_stride_runs_coarser_and_answers_at_full_resolution():
    model, _ = build_model(
        "tinyseg", {"widths": [4, 8, 16], "input_size": [64, 64], "input_stride": 2}
    )
    assert model.size_multiple == 8
    logits = model(torch.rand(2, 1, 3, 32, 48))
    assert logits.shape == (2, 1, 32, 48)
    assert model.encoder[0][0].in_channels == 4  # the 2x2 sub-images of the frame
    with pytest.raises(InputError, match="multiples of 64"):  # 2 x 2**5 for six levels
        build_model("tinyseg", {"widths": [2] * 6, "input_size": [96, 96], "input_stride": 2})


def test_boxes_are_clipped_to_the_frame_and_padding_boxes_dropped():
    from mistd.boxes import clip_to_frame

    boxes = np.array(
        [[-3, 2, 5, 8], [120, 80, 140, 95], [131, 0, 150, 20], [np.nan, 0, 4, 4]], np.float32
    )
    clipped, keep = clip_to_frame(boxes, height=90, width=130)
    np.testing.assert_array_equal(keep, [True, True, False, False])
    np.testing.assert_array_equal(clipped[:2], [[0, 2, 5, 8], [120, 80, 130, 90]])
