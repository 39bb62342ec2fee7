"""Multi-source training items: weights, native-scale windows, downscaling, static clips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.data.sources import MultiSourceTrainingSet, SourceConfig, grow_boxes
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _dataset(tmp_path, name, size, box, frames=1):
    import cv2

    records = []
    for k in range(frames):
        image = np.full(size, 20, np.uint8)
        x1, y1, x2, y2 = box
        image[y1:y2, x1:x2] = 250
        path = tmp_path / f"{name}{k}.png"
        cv2.imwrite(str(path), image)
        records.append(
            FrameRecord(
                name, k, path=path, boxes=np.asarray([box], np.float32), labels=np.zeros(1, int)
            )
        )
    return FrameDataset([Sequence(name, records)], ["target"], str(tmp_path), "images")


def test_window_keeps_pixels_and_boxes(tmp_path):
    # a 200x300 frame, a 6x4 target: the 64x64 window shows it unscaled, its box moved with it
    data = _dataset(tmp_path, "a", (200, 300), (150, 100, 156, 104))
    items = MultiSourceTrainingSet(
        [(SourceConfig(name="a"), data)], 1, (64, 64), length=20, target_crop=1.0, flip=False
    )
    for i in range(20):
        clip, targets, meta = items[i]
        assert clip.shape == (1, 3, 64, 64) and meta["source"] == "a"
        ((_, cx, cy, w, h),) = targets.tolist()
        assert (w, h) == (6, 4)
        # the box's pixels are the bright ones (channel 0 normalised: 250 -> (250/255-.485)/.229)
        pixel = clip[0, 0, int(cy), int(cx)].item()
        assert pixel == pytest.approx((250 / 255 - 0.485) / 0.229, abs=1e-4)


def test_downscale_and_weights_and_static_clips(tmp_path):
    big = _dataset(tmp_path, "big", (256, 256), (100, 100, 132, 124))
    small = _dataset(tmp_path, "small", (40, 50), (10, 10, 14, 13))
    sources = [
        (SourceConfig(name="big", weight=3.0, scale=(4.0, 4.0)), big),
        (SourceConfig(name="small", weight=1.0), small),
    ]
    items = MultiSourceTrainingSet(sources, 3, (64, 64), length=400, target_crop=1.0, seed=1)
    names = [items[i][2]["source"] for i in range(400)]
    assert 0.68 < names.count("big") / 400 < 0.82  # weight 3:1
    clip, targets, meta = next(items[i] for i in range(400) if names[i] == "big")
    assert targets[0, 3:].tolist() == pytest.approx([8, 6], abs=0.01)  # 32x24 shrunk 4x
    # a single frame gives a static clip of T copies; the 40x50 frame is padded with grey
    clip, targets, _ = next(items[i] for i in range(400) if names[i] == "small")
    assert torch.equal(clip[0], clip[2])
    grey = (128 / 255 - 0.485) / 0.229
    assert (clip[0, 0] - grey).abs().lt(1e-5).float().mean() > 0.4


def test_draws_depend_on_seed_epoch_and_index_only(tmp_path):
    data = _dataset(tmp_path, "a", (120, 160), (50, 50, 55, 55))
    make = lambda: MultiSourceTrainingSet([(SourceConfig(), data)], 1, (32, 32), length=8)  # noqa: E731
    a, b = make(), make()
    assert torch.equal(a[3][0], b[3][0])
    b.epoch = 1
    assert not all(torch.equal(a[i][0], b[i][0]) for i in range(8))


def test_grow_boxes_and_bad_sources(tmp_path):
    grown = grow_boxes(np.asarray([[10, 10, 13, 12], [0, 0, 20, 9]], np.float32), 8)
    np.testing.assert_allclose(grown, [[7.5, 7, 15.5, 15], [0, 0, 20, 9]])
    data = _dataset(tmp_path, "a", (64, 64), (1, 1, 4, 4))
    with pytest.raises(InputError, match=r"sources\[0\].*weight"):
        MultiSourceTrainingSet([(SourceConfig(path="x", weight=0), data)], 1, (32, 32))
    with pytest.raises(InputError, match="scale"):
        MultiSourceTrainingSet([(SourceConfig(path="x", scale=(0.5, 2)), data)], 1, (32, 32))


def test_painted_targets_are_where_their_boxes_say_and_move_with_the_clip():
    from mistd.data.sources import paint_targets

    rng = np.random.default_rng(4)
    frames = np.full((3, 48, 64), 40.0, np.float32)
    painted, boxes = paint_targets(frames, 2, rng)
    assert boxes.shape == (2, 4)
    difference = np.abs(painted - frames)
    for x1, y1, x2, y2 in boxes:
        inside = difference[-1, int(y1) : int(y2) + 1, int(x1) : int(x2) + 1]
        assert inside.max() >= 3.0  # a peak of at least 6 grey levels, sampled off its centre
        assert 1 <= (x2 - x1) / 2 <= 3.2 and 1 <= (y2 - y1) / 2 <= 3.2  # 2-5 px targets
    # away from the painted targets nothing changed
    assert (difference[-1] > 0.5).mean() < 0.1


def test_overlay_is_static_and_adds_no_target(tmp_path):
    from mistd.data.sources import draw_overlay

    frames = np.full((3, 64, 96), 30.0, np.float32)
    draw_overlay(frames, np.random.default_rng(0))
    assert np.array_equal(frames[0], frames[2]) and (frames[0] != 30.0).any()
    data = _dataset(tmp_path, "a", (64, 96), (10, 10, 13, 13))
    items = MultiSourceTrainingSet(
        [(SourceConfig(), data)], 1, (64, 96), length=6, overlay=1.0, target_crop=1.0
    )
    assert all(len(items[i][1]) == 1 for i in range(6))  # the overlay is never a target
