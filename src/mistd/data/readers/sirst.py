"""SIRST-V2 style single-frame data sets: format `sirst`.

A folder with `images/<name>.png`, VOC boxes `bboxes/<name>.xml` (`xmin ymin xmax ymax`,
inclusive pixel coordinates), optional binary masks `masks/<name>_pixels0.png` (used for Pd/Fa)
and optional split lists `splits/<split>.txt` (one image name per line). Every image is its own
sequence of one frame (the frames come from different videos and sensors). An xml without
objects (or no xml where the mask is all zero) is a real frame without a target: a hard
negative, kept.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mistd.data.readers.common import natural_key
from mistd.data.readers.frames import IMAGE_SUFFIXES
from mistd.data.readers.masks import _mask_for, boxes_from_mask
from mistd.data.readers.video_csv import parse_name_list, unknown_names_error
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord, Sequence


def looks_like_sirst(folder: Path) -> bool:
    """True for a folder with `images/` and VOC `bboxes/` (the SIRST-V2 layout)."""
    return (folder / "images").is_dir() and (folder / "bboxes").is_dir()


def _number(node: ET.Element, tag: str, path: Path) -> float:
    child = node.find(tag)
    try:
        return float(child.text)  # type: ignore[union-attr, arg-type]
    except (AttributeError, TypeError, ValueError):
        raise InputError(f"<bndbox> needs a numeric <{tag}>", path=path) from None


def read_voc_boxes(path: Path) -> tuple[np.ndarray, tuple[int, int] | None]:
    """`([N, 4] float32 xyxy, (width, height) or None)` from a VOC xml.

    VOC corners are inclusive pixels, so a box `xmin..xmax` covers `xmax - xmin + 1` pixels and
    becomes `[xmin, ymin, xmax + 1, ymax + 1]` (the convention of mask-derived boxes). Objects
    without a `<bndbox>` (SIRST-V2 writes them for frames without a target) are skipped.
    """
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise InputError(f"cannot read VOC xml ({exc})", path=path) from exc
    boxes = []
    for box in root.iter("bndbox"):
        x1, y1 = _number(box, "xmin", path), _number(box, "ymin", path)
        x2, y2 = _number(box, "xmax", path), _number(box, "ymax", path)
        if x2 < x1 or y2 < y1:
            raise InputError(f"box ({x1}, {y1}, {x2}, {y2}) has xmax < xmin or ymax < ymin", path)
        boxes.append([x1, y1, x2 + 1, y2 + 1])
    size = None
    node = root.find("size")
    if node is not None:
        try:
            size = (int(node.findtext("width", "")), int(node.findtext("height", "")))
        except ValueError:
            size = None
    return np.asarray(boxes, np.float32).reshape(-1, 4), size


def read_sirst(path: str | Path, select: str | None = None) -> FrameDataset:
    """Read a SIRST-V2 style folder (see the module docstring).

    Args:
        path: the folder.
        select: a split name with a `splits/<select>.txt` list (`train`, `val`), comma-separated
            image names, or a .txt file of names; None = every image.
    Returns:
        a `FrameDataset` with one single-frame sequence per image, one class `target`.
    """
    folder = Path(path)
    image_dir, box_dir, mask_dir = folder / "images", folder / "bboxes", folder / "masks"
    if not looks_like_sirst(folder):
        raise InputError("a SIRST data set needs 'images/' and 'bboxes/' folders", path=folder)
    images = {
        p.stem: p
        for p in sorted(image_dir.iterdir(), key=lambda p: natural_key(p.name))
        if p.suffix.lower() in IMAGE_SUFFIXES
    }
    if not images:
        raise InputError("no images found", path=image_dir)
    names = list(images)
    if select:
        split_file = folder / "splits" / f"{select}.txt"
        wanted, source, where = parse_name_list(str(split_file) if split_file.is_file() else select)
        unknown = [w for w in wanted if w not in images]
        if unknown:
            splits = sorted(p.stem for p in (folder / "splits").glob("*.txt"))
            hint = f"; splits: {', '.join(splits)}" if splits else ""
            raise unknown_names_error(unknown, source, where, f"in {image_dir}{hint}")
        names = list(dict.fromkeys(wanted))
    sequences = []
    for name in names:
        image = images[name]
        xml = box_dir / f"{name}.xml"
        mask = _mask_for(image, mask_dir) if mask_dir.is_dir() else None
        size = None
        if xml.is_file():
            boxes, size = read_voc_boxes(xml)
        elif mask is not None:
            from mistd.data.readers.frames import read_image

            pixels, _ = read_image(mask)
            boxes, size = boxes_from_mask(pixels), (pixels.shape[1], pixels.shape[0])
        else:
            raise InputError(f"no boxes for {image.name} (expected {xml})", path=image)
        record = FrameRecord(
            sequence=name,
            index=0,
            path=image,
            boxes=boxes,
            labels=np.zeros(len(boxes), np.int64),
            width=size[0] if size else None,
            height=size[1] if size else None,
            mask=mask,
        )
        sequences.append(Sequence(name, [record]))
    return FrameDataset(
        sequences=sequences, class_names=["target"], source=str(folder), format="sirst"
    )
