"""Tiny generated data sets for the engine tests (PNG frames + COCO json, read back by readers)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from mistd.data.writers import write_coco_json
from mistd.structures import FrameDataset, FrameRecord, Sequence

TINY_MODEL = {"width": 0.125, "depth": 0.33, "num_frames": 2, "input_size": [64, 64]}


def make_tiny_dataset(
    root: Path, num_sequences: int = 3, num_frames: int = 8, size: int = 64, seed: int = 0
) -> Path:
    """Sequences of one bright moving Gaussian target (8x8 box) on noise; returns the json path."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    sequences = []
    for s in range(num_sequences):
        x0, y0 = rng.uniform(14, size - 14, 2)
        vx, vy = rng.uniform(-1.0, 1.0, 2)
        frames = []
        for k in range(num_frames):
            cx, cy = x0 + vx * k, y0 + vy * k
            blob = 140 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 1.5**2))
            image = np.clip(60 + 6 * rng.standard_normal((size, size)) + blob, 0, 255)
            path = root / "images" / f"seq{s}" / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), image.astype(np.uint8))
            box = np.array([[cx - 4, cy - 4, cx + 4, cy + 4]], np.float32)
            frames.append(
                FrameRecord(
                    f"seq{s}",
                    k,
                    path,
                    boxes=box,
                    labels=np.zeros(1, np.int64),
                    width=size,
                    height=size,
                )
            )
        sequences.append(Sequence(f"seq{s}", frames))
    return write_coco_json(FrameDataset(sequences), root / "train.json", root)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """COCO json of 3 sequences x 8 frames of 64x64."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_data"))


@pytest.fixture
def make_dataset():
    """`make_tiny_dataset` for tests that need data sets of their own (sizes, seeds)."""
    return make_tiny_dataset
