"""The public API (`mistd.*`) and the one evaluation loop: streamed equals clip mode."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import mistd
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _dataset(tmp_path: Path, frames: int = 5) -> FrameDataset:
    rng = np.random.default_rng(0)
    sequences = []
    for s in range(2):
        records = []
        for k in range(frames):
            image = rng.integers(0, 60, (64, 96), dtype=np.uint8)
            x, y = 10 + 4 * k, 20
            image[y : y + 4, x : x + 4] = 250
            path = tmp_path / f"s{s}_{k}.png"
            cv2.imwrite(str(path), image)
            records.append(
                FrameRecord(
                    f"s{s}",
                    k,
                    path=path,
                    boxes=np.array([[x, y, x + 4, y + 4]], np.float32),
                    labels=np.zeros(1, np.int64),
                    width=96,
                    height=64,
                )
            )
        sequences.append(Sequence(f"s{s}", records))
    return FrameDataset(sequences)


def test_front_door_names() -> None:
    models = mistd.list_models()
    assert {"yolox-s", "mf-baseline", "chal"} <= set(models["zoo"])
    names = ("build_model", "load_detector", "VideoPredictor", "read_dataset", "evaluate")
    for name in (*names, "Predictor", "Results", "Thresholds"):
        assert callable(getattr(mistd, name)), name


@pytest.mark.parametrize("frame_stride", [1, 2])
def test_streamed_evaluation_equals_clip_mode(tmp_path: Path, frame_stride: int) -> None:
    from mistd.inference.detector import ClipDetector

    torch.manual_seed(0)
    model, _ = mistd.build_model(
        "mf-baseline",
        {
            "width": 0.25,
            "depth": 0.33,
            "num_frames": 3,
            "frame_stride": frame_stride,
            "input_size": [64, 96],
        },
    )
    detector = ClipDetector(model, num_frames=3, input_size=(64, 96))
    assert detector.frame_stride == frame_stride
    data = _dataset(tmp_path, frames=7)
    streamed, dets_streamed = mistd.evaluate(detector, data, progress=False)
    clipped, dets_clipped = mistd.evaluate(detector, data, progress=False, stream=False)
    assert len(dets_streamed) == len(dets_clipped) == 14
    for a, b in zip(dets_streamed, dets_clipped, strict=True):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3, rtol=1e-4)
    assert streamed["mAP50"] == clipped["mAP50"] and streamed["n_dets"] == clipped["n_dets"]
    # training's periodic evaluation: every frame streams (the one loop), a sample is clip mode
    from mistd.evaluation.runner import evaluate_sampled

    every = evaluate_sampled(detector, data, 0)
    assert every["mAP50"] == streamed["mAP50"] and every["n_images"] == 14
    assert evaluate_sampled(detector, data, 5)["n_images"] == 5


class _SecondClassOracle:
    """A 'multi-class model' (its run config names two classes) that labels every target as
    class 1: on one-class ground truth it must still count."""

    num_frames = 1
    config = {"data": {"class_names": ["bird", "drone"]}}

    def __init__(self, dataset: FrameDataset) -> None:
        self.truth = {(r.sequence, r.index): r.boxes for r in dataset.frames()}
        self.keys = iter(self.truth)

    def detect(self, frames: np.ndarray, bit_depth: int):
        from mistd.structures import Detections

        boxes = self.truth[next(self.keys)]
        return Detections.from_numpy(boxes, [0.9] * len(boxes), [1] * len(boxes))


def test_multi_class_model_on_one_class_data_is_scored_class_agnostically(tmp_path: Path) -> None:
    data = _dataset(tmp_path)
    metrics, _ = mistd.evaluate(_SecondClassOracle(data), data, progress=False)
    assert metrics["mAP50"] > 0.99
