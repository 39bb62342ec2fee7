"""Mask data sets (IRDST masks, SIRST): format `masks`.

An `images/` plus a `masks/` folder with one binary mask per image (IRDST `S(k).bmp`, SIRST
`X.png` + `X_pixels0.png`); boxes are the 8-connected components of `mask > 0`.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from mistd.data.readers.common import check_contiguous, natural_key, sequences_from_groups
from mistd.data.readers.frames import IMAGE_SUFFIXES, read_image
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord

_IRDST_NAME = re.compile(r"^(?P<seq>.+)\((?P<k>\d+)\)$")


def _mask_for(image: Path, mask_dir: Path) -> Path | None:
    for candidate in [mask_dir / image.name] + [
        mask_dir / f"{image.stem}{suffix}" for suffix in IMAGE_SUFFIXES
    ]:
        if candidate.is_file():
            return candidate
    # SIRST v1 names the mask of `Misc_1.png` `Misc_1_pixels0.png`.
    candidate = mask_dir / f"{image.stem}_pixels0.png"
    return candidate if candidate.is_file() else None


def boxes_from_mask(mask: np.ndarray) -> np.ndarray:
    """`[N, 4]` float32 xyxy boxes of the 8-connected components of `mask > 0` (`[H, W]`)."""
    binary = (mask > 0).astype(np.uint8)
    count, _, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    out = [
        [x, y, x + w, y + h]
        for x, y, w, h, _area in stats[1:count]  # component 0 is the background
    ]
    return np.asarray(out, np.float32).reshape(-1, 4)


def read_masks(path: str | Path) -> FrameDataset:
    """Read a mask data set folder: `images/` plus `masks/` with one binary mask per image."""
    path = Path(path)
    image_dir, mask_dir = path / "images", path / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise InputError("a mask data set needs 'images/' and 'masks/' folders", path=path)
    images = sorted(
        (p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )
    if not images:
        raise InputError("no images found", path=image_dir)
    groups: dict[str, list[FrameRecord]] = {}
    numbered: dict[str, list[tuple[int, Path, int | None]]] = {}
    for image in images:
        mask_path = _mask_for(image, mask_dir)
        if mask_path is None:
            raise InputError(
                f"no mask for {image.name} (expected {mask_dir / image.name} or "
                f"{mask_dir / (image.stem + '_pixels0.png')})",
                path=image,
            )
        mask, _ = read_image(mask_path)
        match = _IRDST_NAME.match(image.stem)
        if match:
            name, k = match["seq"], int(match["k"])
            numbered.setdefault(name, []).append((k, image, None))
            index = k - 1
        else:
            name, index = image.stem, 0
        boxes = boxes_from_mask(mask)
        record = FrameRecord(
            sequence=name,
            index=index,
            path=image,
            boxes=boxes,
            labels=np.zeros(len(boxes), np.int64),
            width=mask.shape[1],
            height=mask.shape[0],
            mask=mask_path,
        )
        group = groups.setdefault(name, [])
        if group and (group[0].width, group[0].height) != (record.width, record.height):
            raise InputError(
                f"frame size {record.width}x{record.height} differs from "
                f"{group[0].width}x{group[0].height} of {group[0].mask} in sequence '{name}'",
                path=mask_path,
            )
        group.append(record)
    for name, frames in numbered.items():
        check_contiguous(frames, image_dir, name)
    return FrameDataset(sequences=sequences_from_groups(groups), source=str(path), format="masks")
