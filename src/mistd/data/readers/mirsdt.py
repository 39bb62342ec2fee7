"""The NUDT-MIRSDT release (DTUM): format `mirsdt`.

A split list `train.txt`/`test.txt` of `Sequence<N>/Mix/<00001>.mat` lines; frame k is the last
slice of that file's `Mix` stack (`mistd.data.readers.frames.read_image`), its boxes the components
of `Sequence<N>/masks/<00001>.png`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mistd.data.readers.common import check_contiguous, sequences_from_groups
from mistd.data.readers.frames import read_image
from mistd.data.readers.masks import boxes_from_mask
from mistd.errors import InputError, short
from mistd.io import read_text
from mistd.structures import FrameDataset, FrameRecord

_MIRSDT_LINE = re.compile(r"^(?P<seq>[^/\\]+)[/\\]Mix[/\\](?P<k>\d+)\.mat$")


def read_mirsdt(path: str | Path) -> FrameDataset:
    """Read a NUDT-MIRSDT split list (`train.txt`/`test.txt` beside the `Sequence<N>` folders)."""
    path = Path(path)
    try:
        lines = read_text(path, "split list").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read split list ({exc.strerror or exc})", path=path) from None
    groups: dict[str, list[FrameRecord]] = {}
    numbered: dict[str, list[tuple[int, Path, int | None]]] = {}
    for line_no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        match = _MIRSDT_LINE.match(text)
        if match is None:
            raise InputError(
                f"bad line {short(text)}: expected Sequence<N>/Mix/<k>.mat", path=path, line=line_no
            )
        name, stem = match["seq"], match["k"]
        if name in (".", ".."):
            raise InputError(
                f"bad line {short(text)}: the sequence folder must lie beside the list",
                path=path,
                line=line_no,
            )
        image = path.parent / name / "Mix" / f"{stem}.mat"
        mask_path = path.parent / name / "masks" / f"{stem}.png"
        for needed in (image, mask_path):
            if not needed.is_file():
                raise InputError(f"missing file {needed}", path=path, line=line_no)
        mask, _ = read_image(mask_path)
        boxes = boxes_from_mask(mask)
        record = FrameRecord(
            sequence=name,
            index=int(stem) - 1,
            path=image,
            boxes=boxes,
            labels=np.zeros(len(boxes), np.int64),
            width=mask.shape[1],
            height=mask.shape[0],
            mask=mask_path,
        )
        groups.setdefault(name, []).append(record)
        numbered.setdefault(name, []).append((int(stem), image, line_no))
    if not groups:
        raise InputError("split list has no lines", path=path)
    for name, frames in numbered.items():
        check_contiguous(frames, path, name)
    return FrameDataset(sequences=sequences_from_groups(groups), source=str(path), format="mirsdt")


def looks_like_mirsdt_list(path: Path) -> bool:
    with path.open(errors="replace") as f:
        for raw in f:
            if raw.strip():
                return _MIRSDT_LINE.match(raw.strip()) is not None
    return False
