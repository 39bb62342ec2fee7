"""Write a `FrameDataset` in the on-disk layouts users have: COCO json and UESTC txt index.

Image paths are written relative to `root` (the folder the annotation files describe; record
paths that are relative are taken relative to the working directory, as `open` does), with
forward slashes, so the data set can be moved as a folder. COCO ids: images 1..N in data set
order, category_id = label + 1. Extra per-image keys `sequence` and `frame_index` are added to the
COCO json (ignored by other tools, used by mistd for per-sequence tables). Files are written
atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from mistd.io import write_json_atomic, write_text_atomic
from mistd.structures import FrameDataset, FrameRecord


def _relative(record: FrameRecord, root: Path) -> str:
    if record.path is None:
        raise ValueError(
            f"frame {record.index} of sequence '{record.sequence}' has no image file; "
            "extract video frames to images before writing an index"
        )
    # Both sides absolute first: a relative record path is relative to the working directory,
    # not to `root`, and writing it unchanged gives an index that only works from that directory.
    return Path(os.path.relpath(os.path.abspath(record.path), os.path.abspath(root))).as_posix()


def coco_dict(dataset: FrameDataset, root: str | Path) -> dict:
    """The COCO ground-truth dict for `dataset` (frames without targets included)."""
    root = Path(root)
    images, annotations = [], []
    ann_id = 1
    for image_id, record in enumerate(dataset.frames(), start=1):
        if record.width is None or record.height is None:
            raise ValueError(f"frame {_relative(record, root)} has no known width/height")
        images.append(
            {
                "id": image_id,
                "file_name": _relative(record, root),
                "width": int(record.width),
                "height": int(record.height),
                "sequence": record.sequence,
                "frame_index": int(record.index),
            }
        )
        for box, label in zip(record.boxes, record.labels, strict=True):
            x1, y1, x2, y2 = (float(v) for v in box)
            w, h = x2 - x1, y2 - y1
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "segmentation": [],
                }
            )
            ann_id += 1
    categories = [
        {"id": i + 1, "name": name, "supercategory": "none"}
        for i, name in enumerate(dataset.class_names)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco_json(dataset: FrameDataset, path: str | Path, root: str | Path) -> Path:
    """Write COCO ground truth for `dataset` to `path`; image paths relative to `root`."""
    return write_json_atomic(path, coco_dict(dataset, root), indent=None)


def uestc_lines(dataset: FrameDataset, root: str | Path) -> list[str]:
    """UESTC txt index lines: `<path> x1,y1,x2,y2,cls ...` with integer pixel coordinates.

    The format stores integers (as the SSTNet/Tridos/CHAL index files do); coordinates are rounded
    to the nearest pixel, so sub-pixel boxes lose up to 0.5 px per side in this format.
    """
    root = Path(root)
    lines = []
    for record in dataset.frames():
        parts = [_relative(record, root)]
        for box, label in zip(record.boxes, record.labels, strict=True):
            x1, y1, x2, y2 = (int(v) for v in np.rint(box))
            parts.append(f"{x1},{y1},{x2},{y2},{int(label)}")
        lines.append(" ".join(parts))
    return lines


def write_uestc_txt(dataset: FrameDataset, path: str | Path, root: str | Path) -> Path:
    """Write the UESTC txt index for `dataset` to `path`; image paths relative to `root`."""
    return write_text_atomic(path, "\n".join(uestc_lines(dataset, root)) + "\n")


def write_image(path: str | Path, image: np.ndarray) -> Path:
    """Encode `image` by the suffix of `path` (8- or 16-bit PNG, ...) and write it.

    Encoding in memory first means a full disk raises Python's `OSError` (ENOSPC or EFBIG, naming
    `path`), which the CLI turns into its one line with advice, not an encoder's message."""
    import cv2

    from mistd.errors import InputError

    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise InputError(
            f"cannot encode a {image.dtype} {image.shape} image as {path.suffix}", path
        )
    try:
        with open(path, "wb") as file:
            file.write(encoded.tobytes())
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    return path
