"""Classical detectors on generated frames: the top box hits the target; temporal needs motion."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.classical import CLASSICAL, BoxRule, TemporalDetector, response_to_detections
from mistd.structures import Detections

H, W = 96, 128


def _frame(blobs: list[tuple[float, float, float]], seed: int, dtype=np.uint8) -> np.ndarray:
    """Smooth background + Gaussian blobs (x, y, amplitude) + mild noise."""
    yy, xx = np.mgrid[:H, :W].astype(np.float64)
    image = 70 + 30 * np.sin(xx / 23.0) + 20 * np.cos(yy / 17.0)
    for x, y, amplitude in blobs:
        image += amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.3**2))
    image += np.random.default_rng(seed).normal(0, 1.5, image.shape)
    if dtype == np.uint16:
        return np.clip(image * 64, 0, 65535).astype(np.uint16)
    return np.clip(image, 0, 255).astype(np.uint8)


def _hits(dets: Detections, x: float, y: float) -> bool:
    x1, y1, x2, y2 = dets.boxes[0].tolist()
    return x1 <= x <= x2 and y1 <= y <= y2


def _moving_clip(num_frames: int, dtype=np.uint8) -> np.ndarray:
    # a moving blob (3 px/frame) plus a brighter static blob
    return np.stack(
        [
            _frame([(30 + 3 * t, 40 + 2 * t, 60), (95, 70, 90)], seed=t, dtype=dtype)
            for t in range(num_frames)
        ]
    )


@pytest.mark.parametrize("name", sorted(CLASSICAL))
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_top_box_hits_the_blob(name: str, dtype) -> None:
    detector = CLASSICAL[name]()
    clip = _moving_clip(detector.num_frames, dtype)
    bit_depth = 16 if dtype == np.uint16 else 8
    dets = detector.detect(clip, bit_depth)
    assert len(dets) >= 1
    assert float(dets.scores.min()) >= 0 and float(dets.scores.max()) < 1 + 1e-6
    assert bool((dets.scores[:-1] >= dets.scores[1:]).all())  # sorted by score
    key_t = detector.num_frames - 1
    moving = (30 + 3 * key_t, 40 + 2 * key_t)
    if name == "temporal":
        assert _hits(dets, *moving)
    else:  # spatial detectors: both blobs are targets; the top two boxes are on them
        top_two = Detections(dets.boxes[:2], dets.scores[:2], dets.labels[:2])
        hit_static = [
            _hits(Detections(b[None], s[None], c[None]), 95, 70)
            for b, s, c in zip(top_two.boxes, top_two.scores, top_two.labels, strict=True)
        ]
        hit_moving = [
            _hits(Detections(b[None], s[None], c[None]), *moving)
            for b, s, c in zip(top_two.boxes, top_two.scores, top_two.labels, strict=True)
        ]
        assert any(hit_static) and any(hit_moving)


def test_temporal_ignores_static_blob() -> None:
    detector = TemporalDetector(num_frames=5)
    dets = detector.detect(_moving_clip(5), 8)
    boxes = dets.boxes.numpy()
    on_static = (
        (boxes[:, 0] <= 95) & (boxes[:, 2] >= 95) & (boxes[:, 1] <= 70) & (boxes[:, 3] >= 70)
    )
    # either no box on the static blob, or one far weaker than the moving target's
    assert not on_static.any() or float(dets.scores[on_static].max()) < 0.5 * float(dets.scores[0])
    # a fully static clip (sequence start: first frame repeated) gives no confident detection
    static = np.repeat(_frame([(95, 70, 90)], seed=0)[None], 5, axis=0)
    assert len(detector.detect(static, 8)) == 0


def test_flat_frame_and_cap() -> None:
    flat = np.full((1, 32, 32), 100, dtype=np.uint8)
    for name, make in CLASSICAL.items():
        detector = make()
        assert len(detector.detect(np.repeat(flat, detector.num_frames, 0), 8)) == 0, name
    # many peaks: capped at max_detections, lowest scores dropped
    response = np.zeros((64, 64), dtype=np.float32)
    response[::4, ::4] = np.linspace(1, 2, 256).reshape(16, 16)
    dets = response_to_detections(response, BoxRule(k=1.0, max_detections=10))
    assert len(dets) == 10
    assert float(dets.scores.min()) > float(
        response_to_detections(response, BoxRule(k=1.0, max_detections=256)).scores.min()
    )


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 8, 12])
def test_median_of_frames_matches_numpy(n: int) -> None:
    from mistd.classical.temporal import median_of_frames

    frames = np.random.default_rng(n).random((n, 7, 5)).astype(np.float32)
    np.testing.assert_allclose(median_of_frames(frames), np.median(frames, axis=0), rtol=1e-6)


def test_box_is_the_peak_extent_not_the_clutter_component() -> None:
    # a sharp target sitting on a wide, weaker pedestal: both are above mean + 3 std
    yy, xx = np.mgrid[:128, :128].astype(np.float32)
    response = np.where((abs(xx - 60) < 12) & (abs(yy - 60) < 12), 1.0, 0.0).astype(np.float32)
    response += 10.0 * np.exp(-((xx - 60) ** 2 + (yy - 60) ** 2) / (2 * 1.5**2))
    half_max = response_to_detections(
        response, BoxRule(k=3.0, min_box=4.0, margin=0, extent_fraction=0.5)
    )
    component = response_to_detections(response, BoxRule(k=3.0, min_box=4.0, extent_fraction=None))
    x1, y1, x2, y2 = half_max.boxes[0].tolist()
    assert x2 - x1 <= 6 and x1 < 60 < x2 and y1 < 60 < y2  # ~FWHM of the peak (3.5 px)
    cx1, _, cx2, _ = component.boxes[0].tolist()
    assert cx2 - cx1 >= 20  # the whole pedestal
