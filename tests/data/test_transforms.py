"""Letterbox, normalisation and box mapping (the official CHAL preprocessing)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from mistd.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LetterboxInfo,
    letterbox,
    to_model_input,
)


def _official_resize_image(gray: np.ndarray, size: int) -> np.ndarray:
    """The official `resize_image` (RGB, PIL bicubic, gray 128 canvas), red channel."""
    image = Image.fromarray(np.stack([gray] * 3, axis=-1))
    iw, ih = image.size
    scale = min(size / iw, size / ih)
    nw, nh = int(iw * scale), int(ih * scale)
    canvas = Image.new("RGB", (size, size), (128, 128, 128))
    canvas.paste(image.resize((nw, nh), Image.BICUBIC), ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(canvas, np.float32)[..., 0]


@pytest.mark.parametrize("shape", [(48, 72), (64, 64), (30, 20)])
def test_letterbox_matches_official_8bit(shape):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    out, info = letterbox(frames, (64, 64))
    assert out.shape == (2, 64, 64) and out.dtype == np.float32
    for t in range(2):
        np.testing.assert_array_equal(out[t], _official_resize_image(frames[t], 64))
    nh, nw = info.resized_size
    assert info.pad_y == (64 - nh) // 2 and info.pad_x == (64 - nw) // 2


def test_letterbox_info_values():
    info = LetterboxInfo.compute((480, 720), (512, 512))
    assert info.resized_size == (341, 512)
    assert (info.pad_x, info.pad_y) == (0, 85)
    assert info.scale == pytest.approx(512 / 720)
    assert LetterboxInfo.from_dict(info.to_dict()) == info


def test_box_round_trip_numpy_and_torch():
    info = LetterboxInfo.compute((480, 720), (256, 320))
    boxes = np.array([[10, 20, 30, 40], [0, 0, 720, 480]], np.float32)
    to_input = info.boxes_to_input(boxes)
    sx, sy = info.scale_xy
    np.testing.assert_allclose(
        to_input[0],
        [10 * sx + info.pad_x, 20 * sy + info.pad_y, 30 * sx + info.pad_x, 40 * sy + info.pad_y],
        rtol=1e-6,
    )
    # The whole image maps onto the resized area inside the padding.
    nh, nw = info.resized_size
    np.testing.assert_allclose(
        to_input[1], [info.pad_x, info.pad_y, info.pad_x + nw, info.pad_y + nh], atol=1e-4
    )
    np.testing.assert_allclose(info.boxes_to_original(to_input), boxes, atol=1e-3)
    boxes_t = torch.tensor(boxes, dtype=torch.float64)
    back = info.boxes_to_original(info.boxes_to_input(boxes_t))
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float64
    torch.testing.assert_close(back, boxes_t)


def test_to_model_input_channels_padding_and_16bit():
    frames = np.full((3, 20, 40), 200, np.uint8)
    x, info = to_model_input(frames, 8, 40)
    assert x.shape == (3, 3, 40, 40) and x.dtype == torch.float32
    for c in range(3):
        pad = (128 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        inside = (200 / 255 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]
        assert x[0, c, 0, 0].item() == pytest.approx(pad, abs=1e-5)
        assert x[0, c, 20, 20].item() == pytest.approx(inside, abs=1e-5)
    assert info.pad_y == 10
    # 16-bit: fixed scale 255/65535, same picture as the 8-bit frame * 257.
    x16, _ = to_model_input(frames.astype(np.uint16) * 257, 16, 40)
    torch.testing.assert_close(x16, x, atol=1e-4, rtol=0)
