"""Read the data set layouts users have on disk into a `FrameDataset` (DESIGN.md §3).

Formats (`format=` names):
- `uestc`: the SSTNet/Tridos/CHAL txt index, one line per frame `<path> x1,y1,x2,y2,cls ...`.
- `coco`: COCO json (`instances_*.json`); category ids sorted -> labels 0, 1, ...
- `masks`: `images/` + `masks/` folders (IRDST `S(k).bmp`, SIRST `X.png` + `X_pixels0.png`);
  boxes are the 8-connected components of `mask > 0`.
- `anti-uav`: a video plus a per-frame track file (`x y w h` lines, or the Anti-UAV json
  `{"exist": [...], "gt_rect": [...]}`).
- `video`: a video file, one unlabelled sequence.
- `images`: a folder of images (natural numeric order), one unlabelled sequence; a folder of such
  folders gives one sequence per sub-folder.
- `video-csv`: a folder of videos with one label CSV per video (`frame,label,x,y,width,height`)
  and an optional `clips.csv` of per-clip attributes and splits (the thermal drone data set; see
  `mistd.data.video_csv`).
- `mirsdt`: the NUDT-MIRSDT release (DTUM): a split list `train.txt`/`test.txt` of
  `Sequence<N>/Mix/<00001>.mat` lines; frame k is the last slice of that file's `Mix` stack, its
  boxes the components of `Sequence<N>/masks/<00001>.png`.

`read_dataset(path)` detects the format from the path (see `detect_format`). A folder written by
mistd (`images/<seq>/<k>.png`, `coco.json`, `uestc.txt`) is read through its `coco.json`.

Paths recorded in index files often come from the authors' machines: `root=` remaps them (the
shortest trailing part of a recorded path that exists under `root` is found once and applied to
every line). Images need not exist to read an index (sizes are then unknown, `None`); loading a
missing image raises `InputError` naming it.

Frames are read with `cv2.IMREAD_UNCHANGED` and kept 8- or 16-bit. Colour files whose channels
are equal (common for infrared stored as RGB) keep one channel exactly; files with unequal channels
are converted with `cv2.COLOR_BGR2GRAY` (luma weights), the alpha channel is ignored.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from pathlib import Path, PurePosixPath, PureWindowsPath

import cv2
import numpy as np

from mistd.data.video import VIDEO_SUFFIXES, VideoFrameReader, video_info
from mistd.data.video_csv import (
    looks_like_video_csv,
    parse_name_list,
    read_video_csv,
    unknown_names_error,
)
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord, Sequence

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
FORMATS = ("uestc", "coco", "masks", "anti-uav", "video", "images", "mirsdt", "video-csv")
# COCO boxes converted by other tools are floats; allow this much overshoot past the image border.
BORDER_TOLERANCE = 1e-3

_IRDST_NAME = re.compile(r"^(?P<seq>.+)\((?P<k>\d+)\)$")
_MIRSDT_LINE = re.compile(r"^(?P<seq>[^/\\]+)[/\\]Mix[/\\](?P<k>\d+)\.mat$")


# --------------------------------------------------------------------------- frames


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def _single_channel(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    color = image[..., :3]
    if np.array_equal(color[..., 0], color[..., 1]) and np.array_equal(
        color[..., 1], color[..., 2]
    ):
        return np.ascontiguousarray(color[..., 0])
    return cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_BGR2GRAY)


def read_image(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an image file as `([H, W] uint8 | uint16, bit_depth)`.

    Raises `InputError` naming the file when it is missing, unreadable or not 8/16-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("image not found (use --root to remap the paths of an index)", path=path)
    if path.suffix.lower() == ".mat":
        return _read_mix_mat(path)
    try:
        # imdecode(fromfile) instead of imread: works with non-ASCII paths on every platform.
        image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, OSError, ValueError):
        image = None
    if image is None:
        raise InputError("cannot read image (corrupt or unsupported format)", path=path)
    if image.dtype == np.uint8:
        bit_depth = 8
    elif image.dtype == np.uint16:
        bit_depth = 16
    else:
        raise InputError(f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)", path=path)
    return _single_channel(image), bit_depth


def _read_mix_mat(path: Path) -> tuple[np.ndarray, int]:
    """The frame in a NUDT-MIRSDT `Mix` file: the last slice of its `[t, H, W]` stack (the
    stack holds the frames up to this one), rounded to 8 bits (16 if values exceed 255)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path), variable_names=["Mix"])
    except (OSError, ValueError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which scipy does not read.
        raise InputError(f"cannot read MATLAB file ({exc})", path=path) from None
    mix = data.get("Mix")
    if mix is None or mix.ndim not in (2, 3) or mix.size == 0:
        raise InputError("expected a 'Mix' array [t, H, W] (NUDT-MIRSDT frame stack)", path=path)
    frame = np.asarray(mix if mix.ndim == 2 else mix[-1], np.float64)
    if not np.isfinite(frame).all():
        raise InputError("the 'Mix' frame has non-finite values", path=path)
    top = 255 if frame.max() <= 255 else 65535
    dtype = np.uint8 if top == 255 else np.uint16
    return np.clip(np.rint(frame), 0, top).astype(dtype), 8 if top == 255 else 16


_VIDEO_READERS: OrderedDict[Path, VideoFrameReader] = OrderedDict()
_VIDEO_READERS_PID = os.getpid()
_MAX_OPEN_VIDEOS = 4


def _video_reader(path: Path) -> VideoFrameReader:
    global _VIDEO_READERS_PID
    if os.getpid() != _VIDEO_READERS_PID:
        # A forked DataLoader worker must not share its parent's open decoders.
        _VIDEO_READERS.clear()
        _VIDEO_READERS_PID = os.getpid()
    reader = _VIDEO_READERS.get(path)
    if reader is None:
        reader = VideoFrameReader(path)
        _VIDEO_READERS[path] = reader
        while len(_VIDEO_READERS) > _MAX_OPEN_VIDEOS:
            _VIDEO_READERS.popitem(last=False)[1].close()
    _VIDEO_READERS.move_to_end(path)
    return reader


def load_frame(record: FrameRecord, decoded_cache: bool = False) -> tuple[np.ndarray, int]:
    """Pixels of one frame: `([H, W] uint8 | uint16, bit_depth)` from its image or video.

    With `decoded_cache`, video frames come from the decoded-frame cache (`mistd.data.frame_cache`:
    each video decoded once, then read by random access), as training wants.
    Raises `InputError` naming the file if it cannot be read or if its size differs from the size
    recorded for the frame (sizes may not change inside a sequence).
    """
    if record.path is not None:
        image, bit_depth = read_image(record.path)
        source = Path(record.path)
    elif record.video is not None and decoded_cache:
        from mistd.data.frame_cache import decoded_frames

        frames = decoded_frames(record.video)
        if record.index >= len(frames):
            raise InputError(
                f"video has {len(frames)} frames, frame {record.index} was requested",
                path=record.video,
            )
        image = np.array(frames[record.index])
        bit_depth = 16 if image.dtype == np.uint16 else 8
        source = Path(record.video)
    elif record.video is not None:
        image = _video_reader(Path(record.video)).read(record.index)
        bit_depth = 16 if image.dtype == np.uint16 else 8
        source = Path(record.video)
    else:
        raise InputError(f"frame {record.index} of sequence '{record.sequence}' has no file")
    height, width = image.shape
    if (record.width is not None and record.width != width) or (
        record.height is not None and record.height != height
    ):
        raise InputError(
            f"frame size {width}x{height} differs from {record.width}x{record.height} expected "
            f"for sequence '{record.sequence}' (sizes may not change inside a sequence; "
            "annotation sizes must match the image)",
            path=source,
        )
    return image, bit_depth


def _image_size(path: Path) -> tuple[int, int] | None:
    """`(width, height)` of an image file, or None if it does not exist."""
    if not path.is_file():
        return None
    image, _ = read_image(path)
    return image.shape[1], image.shape[0]


# --------------------------------------------------------------------------- helpers


def _unique_names(parents: list[PurePosixPath]) -> dict[PurePosixPath, str]:
    """Short, unique sequence names: the last folder name, more parts where names collide."""
    distinct = list(dict.fromkeys(parents))
    depth = dict.fromkeys(distinct, 1)
    while True:
        names: dict[str, list[PurePosixPath]] = {}
        for p in distinct:
            names.setdefault("/".join(p.parts[-depth[p] :]) or ".", []).append(p)
        clashes = [ps for ps in names.values() if len(ps) > 1]
        if not clashes:
            return {p: "/".join(p.parts[-depth[p] :]) or "." for p in distinct}
        grew = False
        for group in clashes:
            for p in group:
                if depth[p] < len(p.parts):
                    depth[p] += 1
                    grew = True
        if not grew:
            return {p: p.as_posix() for p in distinct}


def _recorded_parts(text: str) -> tuple[bool, tuple[str, ...]]:
    """(is_absolute, parts) of a path written on any OS."""
    if "\\" in text and "/" not in text:
        pure = PureWindowsPath(text)
        return pure.is_absolute() or bool(pure.drive), tuple(
            p for p in pure.parts if p != pure.anchor
        )
    pure = PurePosixPath(text)
    parts = tuple(p for p in pure.parts if p != "/")
    return pure.is_absolute(), parts


class _PathResolver:
    """Map paths recorded in an index file to files on this machine.

    Relative paths resolve against the first base folder under which one of them exists; if
    none does, they are remapped like absolute paths (else the first base is used). Absolute
    paths are used as they are when they exist; otherwise the shortest trailing part that exists
    under a remap root is found once (from the first path that resolves) and applied to every
    path.
    """

    def __init__(self, bases: list[Path], remap_roots: list[Path], prefer_remap: bool):
        self.bases = bases
        self.remap_roots = remap_roots
        self.prefer_remap = prefer_remap

    def resolve(self, recorded: list[str]) -> list[Path]:
        parsed = [_recorded_parts(text) for text in recorded]
        # One probe per folder keeps this cheap for indexes of many thousand lines.
        probes: dict[tuple[bool, tuple[str, ...]], tuple[str, ...]] = {}
        for is_abs, parts in parsed:
            probes.setdefault((is_abs, parts[:-1]), parts)
        rel_probes = [parts for (is_abs, _), parts in probes.items() if not is_abs]
        abs_probes = [parts for (is_abs, _), parts in probes.items() if is_abs]

        base = self.bases[0]
        rel_remap: tuple[Path, int] | None = None
        for candidate in self.bases:
            if any(candidate.joinpath(*parts).exists() for parts in rel_probes):
                base = candidate
                break
        else:
            # Relative to a folder we do not know (the CHAL txt files hold paths relative to the
            # authors' working directory, `datasets/DAUB-H/images/1/0.bmp`): remap like absolute.
            if rel_probes:
                rel_remap = self._find_remap(rel_probes)

        remap: tuple[Path, int] | None = None
        keep_absolute = False
        if abs_probes:
            as_is = any(Path("/", *parts).exists() for parts in abs_probes)
            if not self.prefer_remap and as_is:
                keep_absolute = True
            else:
                remap = self._find_remap(abs_probes)
                keep_absolute = remap is None

        out = []
        for text, (is_abs, parts) in zip(recorded, parsed, strict=True):
            if not is_abs and rel_remap is not None:
                out.append(rel_remap[0].joinpath(*parts[-rel_remap[1] :]))
            elif not is_abs:
                out.append(base.joinpath(*parts))
            elif keep_absolute or remap is None:
                out.append(Path(text))
            else:
                out.append(remap[0].joinpath(*parts[-remap[1] :]))
        return out

    def _find_remap(self, abs_probes: list[tuple[str, ...]]) -> tuple[Path, int] | None:
        for parts in abs_probes:
            for root in self.remap_roots:
                for n in range(1, len(parts) + 1):
                    if root.joinpath(*parts[-n:]).exists():
                        return root, n
        return None


def _check_box(
    box: list[float],
    size: tuple[int, int] | None,
    path: Path,
    line: int | None,
    where: str = "",
) -> None:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise InputError(
            f"{where}box {_fmt_box(box)} has non-positive width or height (expected x2>x1, y2>y1)",
            path=path,
            line=line,
        )
    if size is not None:
        width, height = size
        tol = BORDER_TOLERANCE
        if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
            raise InputError(
                f"{where}box {_fmt_box(box)} lies outside the {width}x{height} image",
                path=path,
                line=line,
            )


def _fmt_box(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def _sequences_from_groups(groups: dict[str, list[FrameRecord]]) -> list[Sequence]:
    """Sequences in first-seen order, frames sorted by index."""
    sequences = []
    for name, frames in groups.items():
        frames.sort(key=lambda r: r.index)
        sequences.append(Sequence(name=name, frames=frames))
    return sequences


def _check_contiguous(
    frames: list[tuple[int, Path, int | None]], source: Path, sequence: str
) -> None:
    """Frame numbers of one sequence must be consecutive; `frames` = (k, file, line)."""
    frames = sorted(frames, key=lambda f: f[0])
    for (k0, file0, _), (k1, file1, line1) in zip(frames, frames[1:], strict=False):
        if k1 == k0:
            raise InputError(
                f"frame {k1} of sequence '{sequence}' appears twice ({file0} and {file1})",
                path=source,
                line=line1,
            )
        if k1 != k0 + 1:
            raise InputError(
                f"sequence '{sequence}' has a gap: frame {k0 + 1} is missing between {file0} and "
                f"{file1} (frames must be numbered consecutively)",
                path=source,
                line=line1,
            )


# --------------------------------------------------------------------------- UESTC txt


def read_uestc(path: str | Path, root: str | Path | None = None) -> FrameDataset:
    """Read a UESTC txt index (`<path> x1,y1,x2,y2,cls ...` per line, integer pixels)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read index file ({exc})", path=path) from exc
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
                    f"bad box '{field}': expected five integers x1,y1,x2,y2,cls",
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
    resolver = _PathResolver(bases, remap_roots, prefer_remap=root_path is not None)
    files = resolver.resolve([e[1] for e in entries])

    parents = [PurePosixPath(*_recorded_parts(e[1])[1][:-1]) for e in entries]
    names = _unique_names(parents)
    groups: dict[str, list[FrameRecord]] = {}
    numbered: dict[str, list[tuple[int, Path, int | None]]] = {}
    lines: dict[int, int] = {}
    for (line_no, recorded, boxes, labels), file, parent in zip(
        entries, files, parents, strict=True
    ):
        stem = PurePosixPath(_recorded_parts(recorded)[1][-1]).stem
        if not stem.isdigit():
            raise InputError(
                f"frame file '{recorded}' is not named <k>.<ext> with a frame number k",
                path=path,
                line=line_no,
            )
        name = names[parent]
        record = FrameRecord(sequence=name, index=int(stem), path=file, boxes=boxes, labels=labels)
        lines[id(record)] = line_no
        groups.setdefault(name, []).append(record)
        numbered.setdefault(name, []).append((int(stem), Path(recorded), line_no))
    for name, frames in numbered.items():
        _check_contiguous(frames, path, name)

    sequences = _sequences_from_groups(groups)
    for seq in sequences:
        size = _image_size(seq.frames[0].path)
        for record in seq.frames:
            if size is not None:
                record.width, record.height = size
            for box in record.boxes:
                _check_box([float(v) for v in box], size, path, lines[id(record)])
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


# --------------------------------------------------------------------------- COCO json


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
    resolver = _PathResolver(bases, list(bases), prefer_remap=root_path is not None)
    files = resolver.resolve([e[1] for e in images])

    by_id: dict[int, FrameRecord] = {}
    parents = [PurePosixPath(*_recorded_parts(e[1])[1][:-1]) for e in images]
    names = _unique_names(parents)
    groups: dict[str, list[FrameRecord]] = {}
    unnumbered: dict[str, list[FrameRecord]] = {}
    for (image_id, file_name, width, height, sequence, frame_index), file, parent in zip(
        images, files, parents, strict=True
    ):
        name = str(sequence) if sequence is not None else names[parent]
        stem = PurePosixPath(_recorded_parts(file_name)[1][-1]).stem
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
        records.sort(key=lambda r: _natural_key(Path(r.path).name))
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
        _check_box(box, size, path, None, where=where + f"image {Path(record.path).name}: ")
        boxes.setdefault(image_id, []).append(box)
        labels.setdefault(image_id, []).append(label_of[category])
    for image_id, record in by_id.items():
        if image_id in boxes:
            record.boxes = np.asarray(boxes[image_id], np.float32).reshape(-1, 4)
            record.labels = np.asarray(labels[image_id], np.int64)
    return FrameDataset(
        sequences=_sequences_from_groups(groups),
        class_names=class_names,
        source=str(path),
        format="coco",
    )


# --------------------------------------------------------------------------- masks


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
        key=lambda p: _natural_key(p.name),
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
        _check_contiguous(frames, image_dir, name)
    return FrameDataset(sequences=_sequences_from_groups(groups), source=str(path), format="masks")


# --------------------------------------------------------------------------- NUDT-MIRSDT


def read_mirsdt(path: str | Path) -> FrameDataset:
    """Read a NUDT-MIRSDT split list (`train.txt`/`test.txt` beside the `Sequence<N>` folders)."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read split list ({exc})", path=path) from None
    groups: dict[str, list[FrameRecord]] = {}
    numbered: dict[str, list[tuple[int, Path, int | None]]] = {}
    for line_no, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        match = _MIRSDT_LINE.match(text)
        if match is None:
            raise InputError(
                f"bad line '{text}': expected Sequence<N>/Mix/<k>.mat", path=path, line=line_no
            )
        name, stem = match["seq"], match["k"]
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
        _check_contiguous(frames, path, name)
    return FrameDataset(sequences=_sequences_from_groups(groups), source=str(path), format="mirsdt")


def _looks_like_mirsdt_list(path: Path) -> bool:
    with path.open(errors="replace") as f:
        for raw in f:
            if raw.strip():
                return _MIRSDT_LINE.match(raw.strip()) is not None
    return False


# --------------------------------------------------------------------------- Anti-UAV


def _siblings(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def _names_match(video_stem: str, track_stem: str) -> bool:
    """True if a track file's name belongs to a video: the same stem, or the video's stem as the
    last number/word after a letters-only prefix, optionally followed by one suffix: Anti-UAV's
    `new_video_4_0.txt` for `4.avi`, `IR_label.json` for `IR.mp4`."""
    if track_stem == video_stem:
        return True
    pattern = rf"(?:[A-Za-z_]*_)?{re.escape(video_stem)}(?:_[A-Za-z0-9]+)?"
    return re.fullmatch(pattern, track_stem) is not None


def _find_track_file(video: Path) -> Path | None:
    """The track file of `video`: same stem .txt/.json, else the one whose name matches the
    video's (`_names_match`), else the single .txt/.json beside it."""
    for suffix in (".txt", ".json"):
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    candidates = _siblings(video.parent, (".txt", ".json"))
    matching = [p for p in candidates if _names_match(video.stem, p.stem)]
    if len(matching) == 1:
        return matching[0]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        what = "several annotation files match" if matching else "no annotation file matches"
        raise InputError(
            f"{what} the video's name ("
            + ", ".join(p.name for p in (matching or candidates))
            + "): pass the track file itself, or use --format video for no labels",
            path=video,
        )
    return None


def _find_video(track: Path) -> Path:
    for suffix in VIDEO_SUFFIXES:
        candidate = track.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    candidates = _siblings(track.parent, VIDEO_SUFFIXES)
    matching = [p for p in candidates if _names_match(p.stem, track.stem)]
    if len(matching) == 1:
        return matching[0]
    if len(candidates) == 1:
        return candidates[0]
    raise InputError(
        "cannot find the video of this track file (expected a video with the same or a matching "
        f"name, e.g. 4.avi for new_video_4_0.txt, or a single video in its folder; found "
        f"{len(candidates)} videos, {len(matching)} matching)",
        path=track,
    )


def _parse_track_txt(path: Path) -> list[list[float] | None]:
    lines = path.read_text().splitlines()
    out: list[list[float] | None] = []
    for line_no, raw in enumerate(lines, start=1):
        fields = [f for f in re.split(r"[\s,]+", raw.strip()) if f]
        if not fields:
            out.append(None)
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            values = []
        if len(fields) != 4 or len(values) != 4 or not all(np.isfinite(values)):
            raise InputError(
                f"expected four numbers 'x y w h' (or an empty line), got '{raw.strip()}'",
                path=path,
                line=line_no,
            )
        out.append(None if all(v == 0 for v in values) else values)
    return out


def _parse_track_json(path: Path) -> list[list[float] | None]:
    try:
        data = json.loads(path.read_text())
        exist = list(data["exist"])
        rects = list(data["gt_rect"])
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise InputError(
            f"expected Anti-UAV json {{'exist': [...], 'gt_rect': [[x,y,w,h], ...]}} ({exc!r})",
            path=path,
        ) from exc
    if len(exist) != len(rects):
        raise InputError(
            f"'exist' has {len(exist)} entries but 'gt_rect' has {len(rects)}", path=path
        )
    out: list[list[float] | None] = []
    for i, (flag, rect) in enumerate(zip(exist, rects, strict=True)):
        if not flag or not rect:
            out.append(None)
            continue
        try:
            values = [float(v) for v in rect]
        except (TypeError, ValueError):
            values = []
        if len(values) != 4:
            raise InputError(f"gt_rect[{i}]: expected [x, y, w, h], got {rect!r}", path=path)
        out.append(None if all(v == 0 for v in values) else values)
    return out


def read_anti_uav(path: str | Path) -> FrameDataset:
    """Read an Anti-UAV video plus its track file; `path` is either of the two, or a folder of
    several videos each beside its track file (`N.avi` + `new_video_N_0.txt`): one sequence each."""
    path = Path(path)
    if path.is_dir():
        videos = _siblings(path, VIDEO_SUFFIXES)
        if not videos:
            raise InputError("no video files in this folder", path=path)
        tracks = {}
        for video in videos:
            track = _find_track_file(video)
            if track is None:
                raise InputError("no track file (.txt or .json) matches this video", path=video)
            tracks[video] = track
        sequences = [read_anti_uav(track).sequences[0] for track in tracks.values()]
        names = [s.name for s in sequences]
        if len(set(names)) != len(names):
            raise InputError(f"videos with the same name in this folder: {names}", path=path)
        return FrameDataset(sequences=sequences, source=str(path), format="anti-uav")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        video, track = path, _find_track_file(path)
        if track is None:
            raise InputError("no track file (.txt or .json) beside the video", path=path)
    else:
        video, track = _find_video(path), path
    info = video_info(video)
    rects = _parse_track_json(track) if track.suffix.lower() == ".json" else _parse_track_txt(track)
    # Empty lines are frames without a target; extra ones past the last frame are just padding.
    while len(rects) > info.frames and rects[-1] is None:
        rects.pop()
    if len(rects) != info.frames:
        raise InputError(
            f"track file has {len(rects)} entries but the video {video.name} has {info.frames} "
            "frames (one entry per frame expected)",
            path=track,
        )
    size = (info.width, info.height)
    frames = []
    for i, rect in enumerate(rects):
        record = FrameRecord(
            sequence=video.stem, index=i, video=video, width=info.width, height=info.height
        )
        if rect is not None:
            x, y, w, h = rect
            box = [x, y, x + w, y + h]
            line = i + 1 if track.suffix.lower() != ".json" else None
            where = "" if line is not None else f"gt_rect[{i}]: "
            _check_box(box, size, track, line, where=where)
            record.boxes = np.asarray([box], np.float32)
            record.labels = np.zeros(1, np.int64)
        frames.append(record)
    return FrameDataset(
        sequences=[Sequence(name=video.stem, frames=frames)], source=str(track), format="anti-uav"
    )


# --------------------------------------------------------------------------- unlabelled


def read_video(path: str | Path) -> FrameDataset:
    """A video as one unlabelled sequence."""
    path = Path(path)
    info = video_info(path)
    frames = [
        FrameRecord(sequence=path.stem, index=i, video=path, width=info.width, height=info.height)
        for i in range(info.frames)
    ]
    return FrameDataset(
        sequences=[Sequence(name=path.stem, frames=frames)], source=str(path), format="video"
    )


def _folder_images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: _natural_key(p.name),
    )


def read_image_folder(path: str | Path) -> FrameDataset:
    """Images of a folder (natural order) as one unlabelled sequence; sub-folders of images give
    one sequence each. Frame sizes are taken from each sequence's first image."""
    path = Path(path)
    folders = [path] if _folder_images(path) else []
    if not folders:
        folders = sorted(
            (p for p in path.iterdir() if p.is_dir() and _folder_images(p)),
            key=lambda p: _natural_key(p.name),
        )
    if not folders:
        raise InputError(
            "no images found (expected " + "/".join(IMAGE_SUFFIXES) + " files)", path=path
        )
    sequences = []
    for folder in folders:
        files = _folder_images(folder)
        numbers = [int(f.stem) for f in files if f.stem.isdigit()]
        if len(numbers) == len(files) > 1:
            expected = set(range(numbers[0], numbers[-1] + 1))
            missing = sorted(expected - set(numbers))
            if missing:
                import warnings

                warnings.warn(
                    f"{folder}: frame numbers have gaps ({len(missing)} missing, the first "
                    f"{missing[0]}); the frames are read in order as if consecutive",
                    stacklevel=2,
                )
        width, height = _image_size(files[0]) or (None, None)
        frames = [
            FrameRecord(sequence=folder.name, index=i, path=f, width=width, height=height)
            for i, f in enumerate(files)
        ]
        sequences.append(Sequence(name=folder.name, frames=frames))
    return FrameDataset(sequences=sequences, source=str(path), format="images")


# --------------------------------------------------------------------------- dispatch


def _unknown(path: Path, why: str) -> InputError:
    return InputError(
        f"{why}; supported: UESTC txt index, COCO json, images/+masks/ folder, Anti-UAV video + "
        "track txt/json, video file (" + ", ".join(VIDEO_SUFFIXES) + "), image folder "
        "(formats: " + ", ".join(FORMATS) + ")",
        path=path,
    )


def _looks_like_track_txt(path: Path) -> bool:
    """A txt whose first non-empty line is four numbers (Anti-UAV) rather than a path (UESTC)."""
    with path.open(errors="replace") as f:
        for raw in f:
            fields = [x for x in re.split(r"[\s,]+", raw.strip()) if x]
            if not fields:
                continue
            try:
                [float(x) for x in fields]
            except ValueError:
                return False
            return len(fields) == 4
    return False


def _folder_images_anywhere(path: Path) -> bool:
    return bool(_folder_images(path)) or any(
        p.is_dir() and _folder_images(p) for p in path.iterdir()
    )


def _resolve_directory(path: Path) -> tuple[Path, str]:
    if (path / "coco.json").is_file():
        return path / "coco.json", "coco"
    instances = sorted(path.glob("instances*.json"))
    if len(instances) == 1:
        return instances[0], "coco"
    if looks_like_video_csv(path):
        return path, "video-csv"
    texts = sorted(p for p in path.glob("*.txt") if p.is_file())
    videos = _siblings(path, VIDEO_SUFFIXES)
    if len(texts) == 1 and not videos:
        return texts[0], "uestc"
    if (path / "images").is_dir() and (path / "masks").is_dir():
        return path, "masks"
    if len(videos) == 1:
        return videos[0], "anti-uav" if _find_track_file(videos[0]) else "video"
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
        if _looks_like_mirsdt_list(path):
            return path, "mirsdt"
        return path, "anti-uav" if _looks_like_track_txt(path) else "uestc"
    if suffix in VIDEO_SUFFIXES:
        return path, "anti-uav" if _find_track_file(path) else "video"
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
            (`train`, `val`), comma-separated sequence names, or a .txt file of names.
        classes: None keeps the data's classes; `target` (any single name) merges them all into
            one class of that name; a comma-separated list fixes the class order (`video-csv`).
    Returns:
        a `FrameDataset` (sequences of `FrameRecord`, boxes xyxy in original pixels).
    """
    dataset = _read(Path(path), format, root, select, classes)
    if select and dataset.format != "video-csv":
        dataset = _select_sequences(dataset, select)
    if classes and "," not in classes:
        dataset = merge_classes(dataset, classes.strip())
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
    if format == "anti-uav":
        return read_anti_uav(path)
    if format == "video":
        return read_video(path)
    if format == "mirsdt":
        return read_mirsdt(path)
    return read_image_folder(path)
