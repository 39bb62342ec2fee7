"""Read the data set layouts users have on disk into a `FrameDataset` (docs/design.md §3).

This module detects the format and dispatches; each format has its own module:

- `uestc` (`readers.uestc`): the SSTNet/Tridos/CHAL txt index, one line per frame
  `<path> x1,y1,x2,y2,cls ...`.
- `coco` (`readers.coco`): COCO json (`instances_*.json`); category ids sorted -> labels 0, 1, ...
- `masks` (`readers.masks`): `images/` + `masks/` folders (IRDST `S(k).bmp`, SIRST `X.png` +
  `X_pixels0.png`); boxes are the 8-connected components of `mask > 0`.
- `anti-uav` (`readers.anti_uav`): a video plus a per-frame track file (`x y w h` lines, or the
  Anti-UAV json `{"exist": [...], "gt_rect": [...]}`).
- `video` (`readers.unlabelled`): a video file, one unlabelled sequence.
- `images` (`readers.unlabelled`): a folder of images (natural numeric order), one unlabelled
  sequence; a folder of such folders gives one sequence per sub-folder.
- `video-csv` (`readers.video_csv`): a folder of videos with one label CSV per video
  (`frame,label,x,y,width,height`) and an optional `clips.csv` of per-clip attributes and splits
  (the thermal drone data set).
- `sirst` (`readers.sirst`): SIRST-V2 style single frames: `images/` + VOC `bboxes/` (+ optional
  `masks/` and `splits/<split>.txt`); each image its own one-frame sequence; `select` takes a split.
- `mirsdt` (`readers.mirsdt`): the NUDT-MIRSDT release (DTUM): a split list `train.txt`/`test.txt`
  of `Sequence<N>/Mix/<00001>.mat` lines; frame k is the last slice of that file's `Mix` stack, its
  boxes the components of `Sequence<N>/masks/<00001>.png`.

Shared parts: `readers.frames` (pixels of a frame: `read_image`, `load_frame`) and
`readers.common` (path remapping, sequence names, box checks).

`read_dataset(path)` detects the format from the path (see `detect_format`). A folder written by
mistd (`images/<seq>/<k>.png`, `coco.json`, `uestc.txt`) is read through its `coco.json`.

Paths recorded in index files often come from the authors' machines: `root=` remaps them (the
shortest trailing part of a recorded path that exists under `root` is found once and applied to
every line). Images need not exist to read an index (sizes are then unknown, `None`); loading a
missing image raises `InputError` naming it.

Frames are kept 8- or 16-bit (`readers.frames`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mistd.data.readers.anti_uav import find_track_file, looks_like_track_txt, read_anti_uav
from mistd.data.readers.coco import read_coco
from mistd.data.readers.common import siblings
from mistd.data.readers.frames import IMAGE_SUFFIXES
from mistd.data.readers.masks import read_masks
from mistd.data.readers.mirsdt import looks_like_mirsdt_list, read_mirsdt
from mistd.data.readers.sirst import looks_like_sirst, read_sirst
from mistd.data.readers.uestc import read_uestc
from mistd.data.readers.unlabelled import folder_images, read_image_folder, read_video
from mistd.data.readers.video_csv import (
    looks_like_video_csv,
    parse_name_list,
    read_video_csv,
    unknown_names_error,
)
from mistd.data.video import VIDEO_SUFFIXES
from mistd.errors import InputError, short
from mistd.structures import FrameDataset

FORMATS = ("uestc", "coco", "masks", "sirst", "anti-uav", "video", "images", "mirsdt", "video-csv")


def _unknown(path: Path, why: str) -> InputError:
    return InputError(
        f"{why}; supported: UESTC txt index, COCO json, images/+masks/ folder, Anti-UAV video + "
        "track txt/json, video file (" + ", ".join(VIDEO_SUFFIXES) + "), image folder "
        "(formats: " + ", ".join(FORMATS) + ")",
        path=path,
    )


def _folder_images_anywhere(path: Path) -> bool:
    return bool(folder_images(path)) or any(p.is_dir() and folder_images(p) for p in path.iterdir())


def _resolve_directory(path: Path) -> tuple[Path, str]:
    if (path / "coco.json").is_file():
        return path / "coco.json", "coco"
    instances = sorted(path.glob("instances*.json"))
    if len(instances) == 1:
        return instances[0], "coco"
    if looks_like_video_csv(path):
        return path, "video-csv"
    texts = sorted(p for p in path.glob("*.txt") if p.is_file())
    videos = siblings(path, VIDEO_SUFFIXES)
    if len(texts) == 1 and not videos:
        return texts[0], "uestc"
    if looks_like_sirst(path):
        return path, "sirst"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return path, "masks"
    if len(videos) == 1:
        return videos[0], "anti-uav" if find_track_file(videos[0]) else "video"
    if len(videos) > 1 and texts + sorted(path.glob("*.json")):
        return path, "anti-uav"  # several clips, each beside its track file
    if _folder_images_anywhere(path):
        return path, "images"
    if (path / "images").is_dir() and _folder_images_anywhere(path / "images"):
        return path / "images", "images"
    if len(instances) > 1:
        raise _unknown(path, "several instances*.json files: pass one of them")
    raise _unknown(path, "cannot tell the data set format of this folder")


def detect_format(path: str | Path) -> str:
    """The format name (one of `FORMATS`) `read_dataset` would use for `path`."""
    return _detect(Path(path))[1]


def _detect(path: Path) -> tuple[Path, str]:
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    if path.is_dir():
        return _resolve_directory(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            with path.open() as f:
                head = f.read(4096)
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read file ({exc})", path=path) from exc
        if '"exist"' in head or '"gt_rect"' in head:
            return path, "anti-uav"
        return path, "coco"
    if suffix == ".txt":
        if looks_like_mirsdt_list(path):
            return path, "mirsdt"
        return path, "anti-uav" if looks_like_track_txt(path) else "uestc"
    if suffix in VIDEO_SUFFIXES:
        return path, "anti-uav" if find_track_file(path) else "video"
    if suffix in IMAGE_SUFFIXES:
        raise _unknown(path, "a single image is not a data set (pass its folder)")
    raise _unknown(path, f"unknown file type '{suffix}'")


def _select_sequences(dataset: FrameDataset, select: str) -> FrameDataset:
    """Keep the sequences named in `select` (comma-separated names or a file of names)."""
    wanted, source, where = parse_name_list(select)
    names = {s.name for s in dataset.sequences}
    unknown = [w for w in wanted if w not in names]
    if unknown:
        example = ", ".join(sorted(names)[:3])
        context = f"in {dataset.source} (it has {len(names)} sequences, e.g. {example})"
        raise unknown_names_error(unknown, source, where, context)
    keep = set(wanted)
    dataset.sequences = [s for s in dataset.sequences if s.name in keep]
    return dataset


def merge_classes(dataset: FrameDataset, name: str = "target") -> FrameDataset:
    """Merge every class into one called `name` (the papers' single-class setting), in place."""
    for record in dataset.frames():
        record.labels = np.zeros_like(record.labels)
    dataset.class_names = [name]
    return dataset


def read_dataset(
    path: str | Path,
    *,
    format: str = "auto",
    root: str | Path | None = None,
    select: str | None = None,
    classes: str | None = None,
) -> FrameDataset:
    """Read a data set in any supported layout.

    Args:
        path: index file, COCO json, track file, video, or folder.
        format: `auto` (detect) or one of `FORMATS`.
        root: folder the index's image paths are relative to (remaps absolute paths from another
            machine); UESTC and COCO only.
        select: keep these sequences: a split name of a `video-csv` folder's `clips.csv`
            or of a `sirst` folder's `splits/` (`train`, `val`), comma-separated sequence
            names, or a .txt file of names.
        classes: None keeps the data's classes; `target` (any single name) merges them all into
            one class of that name; a comma-separated list fixes the class order
            (any format, see `order_classes`).
    Returns:
        a `FrameDataset` (sequences of `FrameRecord`, boxes xyxy in original pixels).
    """
    dataset = _read(Path(path), format, root, select, classes)
    if select and dataset.format not in ("video-csv", "sirst"):
        dataset = _select_sequences(dataset, select)
    if classes and "," not in classes:
        dataset = merge_classes(dataset, classes.strip())
    elif classes and dataset.format != "video-csv":
        dataset = order_classes(dataset, [c.strip() for c in classes.split(",")])
    return dataset


def order_classes(dataset: FrameDataset, names: list[str]) -> FrameDataset:
    """Give `dataset` the class list `names` (in that order), in place: each class of the data
    keeps its name and takes that name's position in `names`; data without names (`class0`,
    `class1`, ... of a UESTC index, or a lone `target`) takes the names by position. A class of
    the data missing from `names` is an `InputError`."""
    if len(set(names)) != len(names) or not all(names):
        raise InputError(f"--classes {short(','.join(names))}: names must be distinct, not empty")
    current = list(dataset.class_names)
    generic = current == ["target"] or current == [f"class{i}" for i in range(len(current))]
    if generic and len(current) <= len(names) and not set(current) <= set(names):
        mapping = list(range(len(current)))
    else:
        missing = [c for c in current if c not in names]
        if missing:
            raise InputError(
                f"--classes {short(','.join(names))} lacks the data's class {short(missing[0])} "
                f"(its classes: {short(', '.join(current))})",
                path=dataset.source,
            )
        mapping = [names.index(c) for c in current]
    table = np.asarray(mapping, np.int64)
    for record in dataset.frames():
        if len(record.labels):
            record.labels = table[record.labels]
    dataset.class_names = list(names)
    return dataset


def _read(
    path: Path,
    format: str,
    root: str | Path | None,
    select: str | None,
    classes: str | None,
) -> FrameDataset:
    if format not in ("auto", *FORMATS):
        raise InputError(
            f"unknown format '{format}' (expected auto or one of: {', '.join(FORMATS)})"
        )
    if root is not None and not Path(root).is_dir():
        raise InputError("--root is not a folder", path=root)
    if format == "auto":
        path, format = _detect(path)
    elif not path.exists():
        raise InputError("no such file or folder", path=path)
    elif path.is_dir() and format in ("coco", "uestc"):
        resolved, detected = _resolve_directory(path)
        if detected != format:
            raise _unknown(path, f"no {format} file found in this folder")
        path = resolved
    if format == "video-csv":
        names = [c.strip() for c in classes.split(",")] if classes and "," in classes else None
        return read_video_csv(path, select=select, class_names=names)
    if format == "uestc":
        return read_uestc(path, root)
    if format == "coco":
        return read_coco(path, root)
    if format == "masks":
        return read_masks(path)
    if format == "sirst":
        return read_sirst(path, select=select)
    if format == "anti-uav":
        return read_anti_uav(path)
    if format == "video":
        return read_video(path)
    if format == "mirsdt":
        return read_mirsdt(path)
    return read_image_folder(path)
