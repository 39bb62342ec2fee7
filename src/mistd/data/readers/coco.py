"""COCO json ground truth (`instances_*.json`): format `coco`.

Category ids sorted -> labels 0, 1, ...; frames without annotations are kept. Sequences come from
an image's `sequence`/`frame_index` fields when present, else from its folder and file number
(images of one folder with different sizes: one sequence per size). The file is checked by
`check_ground_truth`, the one ground-truth check `eval-dets` uses too; image paths stay under the
data folder (see `PathResolver`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mistd.data.readers.common import (
    PathResolver,
    check_box,
    natural_key,
    recorded_parts,
    sequences_from_groups,
    unique_names,
)
from mistd.errors import InputError, short
from mistd.io import read_text
from mistd.structures import FrameDataset, FrameRecord


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_ground_truth(data: Any, name: str | Path) -> None:
    """The one check of COCO ground truth (`data info`, training, `eval`, `eval-dets`): an object
    with an `images` list (unique integer `id`s) and an `annotations` list (`[]` for a set without
    targets), each annotation with an integer `image_id` of a listed image, an integer
    `category_id` and a `bbox` [x, y, w, h] of finite numbers with w, h > 0. `InputError` naming
    `name` and the entry."""
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise InputError("not a COCO file: expected a JSON object with an 'images' list", name)
    if "annotations" not in data:
        raise InputError(
            "no 'annotations' list: add \"annotations\": [] if this set has no targets", name
        )
    if not isinstance(data["annotations"], list):
        raise InputError("field 'annotations' is not a list", name)
    ids = set()
    for i, image in enumerate(data["images"]):
        if not isinstance(image, dict) or not isinstance(image.get("id"), int):
            raise InputError(f"images[{i}]: field 'id' (integer) is missing", name)
        if image["id"] in ids:
            raise InputError(f"images[{i}]: image id {image['id']} appears twice", name)
        ids.add(image["id"])
    for i, ann in enumerate(data["annotations"]):
        where = f"annotations[{i}]"
        if not isinstance(ann, dict):
            raise InputError(f"{where}: expected an object", name)
        for key in ("image_id", "category_id"):
            if not isinstance(ann.get(key), int) or isinstance(ann.get(key), bool):
                raise InputError(f"{where}: field '{key}' (integer) is missing", name)
        box = ann.get("bbox")
        if not (isinstance(box, list | tuple) and len(box) == 4 and all(map(_is_number, box))):
            raise InputError(
                f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {short(box)}", name
            )
        if box[2] <= 0 or box[3] <= 0:
            raise InputError(
                f"{where}: 'bbox' {short(list(box))} has a width or height that is not positive",
                name,
            )
        if ann["image_id"] not in ids:
            raise InputError(f"{where}: unknown image_id {ann['image_id']} (not in 'images')", name)


def read_coco(path: str | Path, root: str | Path | None = None) -> FrameDataset:
    """Read COCO ground truth; frames without annotations are kept."""
    path = Path(path)
    try:
        data = json.loads(read_text(path, "COCO json"))
    except OSError as exc:
        raise InputError(f"cannot read the file ({exc.strerror or exc})", path=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path=path) from exc
    check_ground_truth(data, path)
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
    resolver = PathResolver(bases, list(bases), prefer_remap=root_path is not None, source=path)
    files = resolver.resolve([e[1] for e in images])

    by_id: dict[int, FrameRecord] = {}
    parents = [PurePosixPath(*recorded_parts(e[1])[1][:-1]) for e in images]
    names = unique_names(parents)
    groups: dict[str, list[FrameRecord]] = {}
    unnumbered: dict[str, list[FrameRecord]] = {}
    # Images of one folder but of different sizes (single images, SIRST-style) cannot be frames of
    # one sequence: without a `sequence` field, each size is a sequence of its own.
    sizes: dict[PurePosixPath, set] = {}
    for entry, parent in zip(images, parents, strict=True):
        if entry[4] is None:
            sizes.setdefault(parent, set()).add((entry[2], entry[3]))
    for (image_id, file_name, width, height, sequence, frame_index), file, parent in zip(
        images, files, parents, strict=True
    ):
        name = str(sequence) if sequence is not None else names[parent]
        if sequence is None and len(sizes[parent]) > 1:
            name = f"{name}_{width}x{height}"
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
