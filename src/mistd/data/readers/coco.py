"""COCO json ground truth (`instances_*.json`): format `coco`.

Category ids sorted -> labels 0, 1, ...; frames without annotations are kept. Sequences come from
an image's `sequence`/`frame_index` fields when present, else from its folder and file number.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np

from mistd.data.readers.common import (
    PathResolver,
    check_box,
    natural_key,
    recorded_parts,
    sequences_from_groups,
    unique_names,
)
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord


def read_coco(path: str | Path, root: str | Path | None = None) -> FrameDataset:
    """Read COCO ground truth; frames without annotations are kept."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"not a readable JSON file ({exc})", path=path) from exc
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError("not a COCO file: expected a JSON object with an 'images' list", path=path)
    categories = data.get("categories") or [{"id": 1, "name": "target"}]
    try:
        categories = sorted(categories, key=lambda c: int(c["id"]))
        label_of = {int(c["id"]): i for i, c in enumerate(categories)}
        class_names = [str(c.get("name", f"class{i}")) for i, c in enumerate(categories)]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"bad 'categories' entry ({exc})", path=path) from exc

    images = []
    for i, image in enumerate(data["images"]):
        try:
            entry = (
                int(image["id"]),
                str(image["file_name"]),
                int(image["width"]) if image.get("width") is not None else None,
                int(image["height"]) if image.get("height") is not None else None,
                image.get("sequence"),
                image.get("frame_index"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"images[{i}]: expected 'id', 'file_name', 'width', 'height' ({exc!r})", path=path
            ) from exc
        images.append(entry)
    if not images:
        raise InputError("COCO file has no images", path=path)

    root_path = None if root is None else Path(root)
    bases = [root_path] if root_path is not None else [path.parent, path.parent.parent]
    resolver = PathResolver(bases, list(bases), prefer_remap=root_path is not None)
    files = resolver.resolve([e[1] for e in images])

    by_id: dict[int, FrameRecord] = {}
    parents = [PurePosixPath(*recorded_parts(e[1])[1][:-1]) for e in images]
    names = unique_names(parents)
    groups: dict[str, list[FrameRecord]] = {}
    unnumbered: dict[str, list[FrameRecord]] = {}
    for (image_id, file_name, width, height, sequence, frame_index), file, parent in zip(
        images, files, parents, strict=True
    ):
        name = str(sequence) if sequence is not None else names[parent]
        stem = PurePosixPath(recorded_parts(file_name)[1][-1]).stem
        record = FrameRecord(
            sequence=name, index=0, path=file, width=width, height=height, image_id=image_id
        )
        if frame_index is not None:
            record.index = int(frame_index)
        elif stem.isdigit():
            record.index = int(stem)
        else:
            unnumbered.setdefault(name, []).append(record)
        if image_id in by_id:
            raise InputError(f"image id {image_id} appears twice", path=path)
        by_id[image_id] = record
        groups.setdefault(name, []).append(record)
    # Frames without a number are ordered by file name (natural order) inside their sequence.
    for records in unnumbered.values():
        records.sort(key=lambda r: natural_key(Path(r.path).name))
        for k, record in enumerate(records):
            record.index = k

    boxes: dict[int, list[list[float]]] = {}
    labels: dict[int, list[int]] = {}
    for i, ann in enumerate(data.get("annotations") or []):
        try:
            image_id = int(ann["image_id"])
            x, y, w, h = (float(v) for v in ann["bbox"])
            category = int(ann["category_id"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(
                f"annotations[{i}]: expected 'image_id', 'bbox' [x,y,w,h], 'category_id' ({exc!r})",
                path=path,
            ) from exc
        record = by_id.get(image_id)
        where = f"annotations[{i}] (id {ann.get('id')}): "
        if record is None:
            raise InputError(f"{where}unknown image_id {image_id}", path=path)
        if category not in label_of:
            raise InputError(f"{where}unknown category_id {category}", path=path)
        box = [x, y, x + w, y + h]
        size = None if record.width is None else (record.width, record.height)
        check_box(box, size, path, None, where=where + f"image {Path(record.path).name}: ")
        boxes.setdefault(image_id, []).append(box)
        labels.setdefault(image_id, []).append(label_of[category])
    for image_id, record in by_id.items():
        if image_id in boxes:
            record.boxes = np.asarray(boxes[image_id], np.float32).reshape(-1, 4)
            record.labels = np.asarray(labels[image_id], np.int64)
    return FrameDataset(
        sequences=sequences_from_groups(groups),
        class_names=class_names,
        source=str(path),
        format="coco",
    )
