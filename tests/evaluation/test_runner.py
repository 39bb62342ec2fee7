"""evaluate_detector: clips of the detector's length, ground truth from the records."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mistd.structures import Detections, FrameDataset, FrameRecord, Sequence


class _OracleDetector:
    """Returns the key frame's ground truth (score 0.9) plus one far-away false alarm (0.2)."""

    num_frames = 3

    def __init__(self, dataset: FrameDataset) -> None:
        self.truth = {rec.index: rec.boxes for rec in dataset.frames()}
        self.shapes: list[tuple[int, ...]] = []

    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections:
        self.shapes.append(frames.shape)
        key = int(frames[-1, 0, 0])  # frame number written into pixel (0, 0)
        boxes = np.concatenate([self.truth[key], [[0.0, 0.0, 2.0, 2.0]]])
        return Detections.from_numpy(boxes, [0.9] * len(self.truth[key]) + [0.2])


def test_evaluate_detector(tmp_path: Path) -> None:
    from mistd.evaluation.runner import evaluate_detector

    records = []
    for k in range(4):
        image = np.zeros((16, 20), dtype=np.uint8)
        image[0, 0] = k
        cv2.imwrite(str(tmp_path / f"{k}.png"), image)
        boxes = np.array([[5.0, 5.0, 9.0, 9.0]]) if k != 2 else np.zeros((0, 4))
        records.append(
            FrameRecord(
                "s",
                k,
                path=tmp_path / f"{k}.png",
                boxes=boxes,
                labels=np.zeros(len(boxes), dtype=np.int64),
            )
        )
    dataset = FrameDataset([Sequence("s", records)])
    detector = _OracleDetector(dataset)
    metrics, detections = evaluate_detector(detector, dataset, progress=False)
    assert detector.shapes == [(3, 16, 20)] * 4
    assert len(detections) == 4
    assert metrics["mAP50"] == pytest.approx(1.0) and metrics["recall"] == pytest.approx(1.0)
    assert metrics["n_images"] == 4 and metrics["n_gt"] == 3 and metrics["n_dets"] == 7
    # at 0.5 the false alarms (0.2) are gone; at the operating point precision is 1
    assert metrics["op_precision"] == pytest.approx(1.0)
    metrics, _ = evaluate_detector(detector, dataset, progress=False, max_frames=2)
    assert metrics["n_images"] == 2


def test_evaluate_detector_mask_data_adds_pd_fa(tmp_path: Path) -> None:
    from mistd.evaluation.runner import evaluate_detector

    image = np.zeros((16, 20), dtype=np.uint8)
    mask = np.zeros((16, 20), dtype=np.uint8)
    mask[6:9, 6:9] = 255  # one 3x3 target, centroid (7, 7)
    cv2.imwrite(str(tmp_path / "0.png"), image)
    cv2.imwrite(str(tmp_path / "0_mask.png"), mask)
    record = FrameRecord(
        "s",
        0,
        path=tmp_path / "0.png",
        mask=tmp_path / "0_mask.png",
        boxes=np.array([[6.0, 6.0, 9.0, 9.0]]),
        labels=np.zeros(1, dtype=np.int64),
    )
    dataset = FrameDataset([Sequence("s", [record])])

    class _Boxes:
        num_frames = 1

        def detect(self, frames: np.ndarray, bit_depth: int) -> Detections:
            # the target (filled 3x3 at 6..8) and a 2x2 false alarm; a 0.1 box is not filled
            return Detections.from_numpy(
                [[6.0, 6.0, 9.0, 9.0], [0.0, 0.0, 2.0, 2.0], [14, 10, 18, 14]], [0.9, 0.8, 0.1]
            )

    metrics, _ = evaluate_detector(_Boxes(), dataset, progress=False)
    assert metrics["pd"] == 1.0
    assert metrics["fa"] == pytest.approx(4 / (16 * 20))
