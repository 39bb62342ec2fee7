"""The UESTC txt index (SSTNet/Tridos/CHAL; DAUB, IRDST, ITSDT): format `uestc`.

One line per frame, `<path> x1,y1,x2,y2,cls x1,y1,x2,y2,cls ...` (integer original pixels, 0-based
class; a line may have no boxes). Frames are `<sequence folder>/<k>.<ext>`, k = 0, 1, 2, ...
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from mistd.data.readers.common import (
    PathResolver,
    check_box,
    check_contiguous,
    recorded_parts,
    sequences_from_groups,
    unique_names,
)
from mistd.data.readers.frames import image_size
from mistd.errors import InputError, short
from mistd.io import read_text
from mistd.structures import FrameDataset, FrameRecord, Sequence


def read_uestc(path: str | Path, root: str | Path | None = None) -> FrameDataset:
    """Read a UESTC txt index (`<path> x1,y1,x2,y2,cls ...` per line, integer pixels)."""
    path = Path(path)
    try:
        text = read_text(path, "index file")
    except OSError as exc:
        raise InputError(f"cannot read index file ({exc.strerror or exc})", path=path) from exc
    entries: list[tuple[int, str, np.ndarray, np.ndarray]] = []
    for line_no, raw in enumerate(text.lstrip("\ufeff").splitlines(), start=1):
        # The path is everything before the box fields (each has commas), so a path with spaces
        # in it reads back as written.
        match = re.fullmatch(r"\s*(.+?)((?:\s+\S*,\S*)*)\s*", raw)
        if match is None:
            continue
        fields = [match.group(1), *match.group(2).split()]
        boxes, labels = [], []
        for field in fields[1:]:
            values = field.split(",")
            try:
                numbers = [int(v) for v in values]
            except ValueError:
                numbers = []
            if len(values) != 5 or len(numbers) != 5:
                raise InputError(
                    f"bad box {short(field)}: expected five integers x1,y1,x2,y2,cls",
                    path=path,
                    line=line_no,
                )
            if numbers[4] < 0:
                raise InputError(f"negative class id in box '{field}'", path=path, line=line_no)
            boxes.append(numbers[:4])
            labels.append(numbers[4])
        box_array = np.asarray(boxes, np.float32).reshape(-1, 4)
        entries.append((line_no, fields[0], box_array, np.asarray(labels, np.int64).reshape(-1)))
    if not entries:
        raise InputError("index file has no lines", path=path)

    root_path = None if root is None else Path(root)
    bases = [root_path] if root_path is not None else [path.parent]
    remap_roots = [root_path] if root_path is not None else [path.parent, path.parent.parent]
    resolver = PathResolver(bases, remap_roots, prefer_remap=root_path is not None, source=path)
    files = resolver.resolve([e[1] for e in entries])

    parents = [PurePosixPath(*recorded_parts(e[1])[1][:-1]) for e in entries]
    names = unique_names(parents)
    groups: dict[str, list[FrameRecord]] = {}
    numbered: dict[str, list[tuple[int, Path, int | None]]] = {}
    lines: dict[int, int] = {}
    for (line_no, recorded, boxes, labels), file, parent in zip(
        entries, files, parents, strict=True
    ):
        stem = PurePosixPath(recorded_parts(recorded)[1][-1]).stem
        if not stem.isdigit():
            raise InputError(
                f"frame file {short(recorded)} is not named <k>.<ext> with a frame number k",
                path=path,
                line=line_no,
            )
        name = names[parent]
        record = FrameRecord(sequence=name, index=int(stem), path=file, boxes=boxes, labels=labels)
        lines[id(record)] = line_no
        groups.setdefault(name, []).append(record)
        numbered.setdefault(name, []).append((int(stem), Path(recorded), line_no))
    for name, frames in numbered.items():
        check_contiguous(frames, path, name)

    sequences = sequences_from_groups(groups)
    for seq in sequences:
        size = image_size(seq.frames[0].path)
        for record in seq.frames:
            if size is not None:
                record.width, record.height = size
            for box in record.boxes:
                check_box([float(v) for v in box], size, path, lines[id(record)])
    num_classes = 1 + max(
        (int(r.labels.max()) for r in _all(sequences) if len(r.labels)), default=0
    )
    return FrameDataset(
        sequences=sequences,
        class_names=_class_names(num_classes),
        source=str(path),
        format="uestc",
    )


def _all(sequences: list[Sequence]):
    for seq in sequences:
        yield from seq.frames


def _class_names(num_classes: int) -> list[str]:
    return ["target"] if num_classes <= 1 else [f"class{i}" for i in range(num_classes)]
