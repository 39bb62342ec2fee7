"""Contact sheets: a grid of frames with their boxes, so a person can see a data set at a glance.

Small targets vanish when a box is drawn on top of them, so boxes are drawn with a gap around the
target, and each tile can carry a magnified inset of its first box (the target itself, pixel for
pixel). 16-bit frames are contrast-stretched for display (2nd-99.8th percentile); 8-bit frames are
shown as they are, so the sheet shows what a detector sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mistd.io import atomic_path
from mistd.viz.overlay import to_display

BOX_COLOR = (0, 220, 0)  # BGR
INSET_COLOR = (0, 215, 255)


def _tile(
    frame: np.ndarray,
    boxes: np.ndarray,
    title: str,
    scale: float,
    inset: bool,
    stretch: bool | None,
) -> np.ndarray:
    gray = to_display(frame, 2.0, 99.8, stretch=stretch, bgr=False)
    h, w = gray.shape
    size = (max(int(round(w * scale)), 1), max(int(round(h * scale)), 1))
    interp = cv2.INTER_NEAREST if scale >= 1 else cv2.INTER_AREA
    tile = cv2.cvtColor(cv2.resize(gray, size, interpolation=interp), cv2.COLOR_GRAY2BGR)
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    gap = 3
    for x1, y1, x2, y2 in boxes * scale:
        p1 = (int(np.floor(x1)) - gap, int(np.floor(y1)) - gap)
        p2 = (int(np.ceil(x2)) + gap, int(np.ceil(y2)) + gap)
        cv2.rectangle(tile, p1, p2, BOX_COLOR, 1, cv2.LINE_AA)
    if inset and len(boxes):
        # Magnified crop around the first box: the target as the detector sees it.
        x1, y1, x2, y2 = boxes[0]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        half = int(max(8, np.ceil(max(x2 - x1, y2 - y1))))
        crop = np.zeros((2 * half, 2 * half), dtype=np.uint8)
        ys, xs = int(np.floor(cy)) - half, int(np.floor(cx)) - half
        sy0, sx0 = max(ys, 0), max(xs, 0)
        sy1, sx1 = min(ys + 2 * half, h), min(xs + 2 * half, w)
        if sy1 > sy0 and sx1 > sx0:
            crop[sy0 - ys : sy1 - ys, sx0 - xs : sx1 - xs] = gray[sy0:sy1, sx0:sx1]
        side = int(min(tile.shape[0], tile.shape[1]) * 0.3)
        if side >= 16:
            zoom = cv2.resize(crop, (side, side), interpolation=cv2.INTER_NEAREST)
            tile[-side:, -side:] = cv2.cvtColor(zoom, cv2.COLOR_GRAY2BGR)
            cv2.rectangle(
                tile,
                (tile.shape[1] - side, tile.shape[0] - side),
                (tile.shape[1] - 1, tile.shape[0] - 1),
                INSET_COLOR,
                1,
            )
    if title:
        font, font_scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
        (tw, th), base = cv2.getTextSize(title, font, font_scale, 1)
        cv2.rectangle(tile, (0, 0), (tw + 6, th + base + 4), (0, 0, 0), -1)
        cv2.putText(tile, title, (3, th + 2), font, font_scale, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def contact_sheet(
    frames: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray] | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    scale: float = 1.0,
    inset: bool = True,
    stretch: bool | None = None,
) -> np.ndarray:
    """Tile frames (with boxes drawn) into one image.

    Args:
        frames: `F` frames, each `[H, W]` uint8/uint16/float (sizes may differ: tiles are padded).
        boxes: per frame `[N, 4]` xyxy boxes in that frame's pixels (None: no boxes).
        titles: per frame caption drawn in the tile's corner.
        columns: tiles per row.
        scale: tile magnification (nearest neighbour above 1, area below).
        inset: add a magnified crop of each tile's first box in its bottom-right corner.
        stretch: None = contrast-stretch non-uint8 frames only (2nd-99.8th percentile);
            True = stretch 8-bit frames too; False = never (see `mistd.viz.overlay.to_display`).

    Returns:
        `[rows * h, columns * w, 3]` BGR uint8 image (2 px dark separators).
    """
    if not len(frames):
        raise ValueError("contact_sheet needs at least one frame")
    boxes = boxes if boxes is not None else [np.zeros((0, 4), np.float32)] * len(frames)
    titles = titles if titles is not None else [""] * len(frames)
    tiles = [
        _tile(f, b, t, scale, inset, stretch) for f, b, t in zip(frames, boxes, titles, strict=True)
    ]
    th = max(t.shape[0] for t in tiles)
    tw = max(t.shape[1] for t in tiles)
    columns = max(1, min(columns, len(tiles)))
    rows = (len(tiles) + columns - 1) // columns
    sep = 2
    sheet = np.full(
        (rows * th + (rows - 1) * sep, columns * tw + (columns - 1) * sep, 3), 40, dtype=np.uint8
    )
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        y, x = r * (th + sep), c * (tw + sep)
        sheet[y : y + tile.shape[0], x : x + tile.shape[1]] = tile
    return sheet


def save_contact_sheet(
    path: str | Path,
    frames: Sequence[np.ndarray],
    boxes: Sequence[np.ndarray] | None = None,
    titles: Sequence[str] | None = None,
    columns: int = 4,
    scale: float = 1.0,
    inset: bool = True,
    stretch: bool | None = None,
) -> Path:
    """Write `contact_sheet(...)` (same arguments) to `path` as PNG, atomically."""
    sheet = contact_sheet(frames, boxes, titles, columns, scale, inset, stretch)
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), sheet):
            raise OSError(f"could not write image {path}")
    return Path(path)
