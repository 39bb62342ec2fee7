"""Read a folder of videos with one label CSV per video (format `video-csv`).

The layout of the thermal drone data set (Svanström et al., `drone_ir/` in the shared data):

```
videos/IR_DRONE_001.mp4           one sequence per video
labels/IR_DRONE_001_LABELS.csv    frame,label,x,y,width,height   (0-based frame, top-left + size)
clips.csv                         clip,class,distance_bin,split  (optional: per-clip attributes)
```

Label files may also lie beside the videos and may be named `<video stem>.csv`. Classes are the
distinct values of the `label` column over ALL label files of the folder (lower-cased, sorted), so
every selection of clips (train, val) gets the same class ids. Frames without a row have no
target. Per-clip columns of `clips.csv` other than `clip` (e.g. `distance_bin`, `split`) become
`Sequence.attributes`; evaluation reports per-attribute rows from them.

`select` picks sequences: a value of the `split` column (`train`, `val`), a comma-separated list of
clip names, or a text file with one clip name per line.

Ambiguous folders are refused, naming both files: two videos of one name (`X.mp4`, `X.avi`), two
label files for one video (`videos/X.csv` and `labels/X_LABELS.csv`), a clip listed twice in
`clips.csv`, a label CSV with a column twice. A label CSV without a video and a label row given
twice are warned about (the duplicate row is dropped). Every CSV must be UTF-8.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from pathlib import Path

import numpy as np

from mistd.data.video import VIDEO_SUFFIXES, video_info
from mistd.errors import InputError, short
from mistd.io import read_text
from mistd.structures import FrameDataset, FrameRecord, Sequence

LABEL_COLUMNS = ("frame", "label", "x", "y", "width", "height")
CLIP_LIST = "clips.csv"
# Labels came from a MATLAB tool (1-based origin): allow this much overshoot, then clip.
BORDER_SLACK = 2.0


def _label_candidates(video: Path) -> list[Path]:
    names = (f"{video.stem}_LABELS.csv", f"{video.stem}.csv")
    folders = (video.parent, video.parent.parent / "labels", video.parent / "labels")
    return [folder / name for folder in folders for name in names]


def label_file_for(video: Path) -> Path | None:
    """The label CSV of `video`, or None; `InputError` naming both when two files could be it."""
    found = [p for p in _label_candidates(video) if p.is_file()]
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if len(unique) > 1:
        raise InputError(
            f"two label files for this video: {found[0]} and {found[1]} (keep one)", video
        )
    return found[0] if found else None


def _videos_in(folder: Path) -> list[Path]:
    where = folder / "videos" if (folder / "videos").is_dir() else folder
    videos = sorted(
        p for p in where.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
    )
    seen: dict[str, Path] = {}
    for video in videos:
        if video.stem in seen:
            raise InputError(
                f"two videos named '{video.stem}': {seen[video.stem].name} and {video.name} "
                "(one clip, one video: rename or remove one)",
                where,
            )
        seen[video.stem] = video
    return videos


def _csv_reader(path: Path) -> csv.DictReader:
    """A DictReader over a UTF-8 CSV (`InputError` naming the file for another encoding)."""
    return csv.DictReader(io.StringIO(read_text(path, "CSV file"), newline=""))


def looks_like_video_csv(folder: Path) -> bool:
    """A folder of videos where at least one video has a label CSV (see module docstring)."""
    if not folder.is_dir():
        return False
    videos = _videos_in(folder)
    return bool(videos) and any(label_file_for(v) is not None for v in videos[:50])


def _read_clip_list(path: Path) -> dict[str, dict[str, str]]:
    """`clips.csv` rows by clip name: {column: value} without the `clip` column."""
    reader = _csv_reader(path)
    if reader.fieldnames is None or "clip" not in reader.fieldnames:
        raise InputError("expected a header with a 'clip' column", path=path, line=1)
    _check_header(reader.fieldnames, path)
    rows: dict[str, dict[str, str]] = {}
    lines: dict[str, int] = {}
    for line, row in enumerate(reader, start=2):
        name = (row.get("clip") or "").strip()
        if not name:
            raise InputError("empty 'clip' field", path=path, line=line)
        if name in rows:
            raise InputError(
                f"clip {short(name)} is listed twice (lines {lines[name]} and {line}): keep one "
                "row per clip",
                path=path,
                line=line,
            )
        lines[name] = line
        rows[name] = {k: (v or "").strip() for k, v in row.items() if k and k != "clip"}
    return rows


def _check_header(header: list[str], path: Path) -> None:
    names = [h.strip().lower() for h in header]
    twice = sorted({h for h in names if h and names.count(h) > 1})
    if twice:
        raise InputError(
            f"column {short(twice[0])} appears twice in the header: keep one", path=path, line=1
        )


def _number(text: str, field: str, path: Path, line: int) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        message = f"field '{field}' is not a number: {text!r}"
        raise InputError(message, path=path, line=line) from None
    if not math.isfinite(value):
        raise InputError(f"field '{field}' is not finite: {text!r}", path=path, line=line)
    return value


def read_label_csv(
    path: Path, num_frames: int, width: int, height: int
) -> dict[int, list[tuple[str, list[float], int]]]:
    """Rows of one label CSV grouped by frame: {frame: [(label, [x1, y1, x2, y2], line)]}.

    Raises `InputError` naming the file and line for a missing column, a non-numeric field, a frame
    past the end of the video, an empty label, or a box outside the frame (beyond `BORDER_SLACK`).
    """
    out: dict[int, list[tuple[str, list[float], int]]] = {}
    seen: dict[tuple, int] = {}
    reader = _csv_reader(path)
    _check_header(list(reader.fieldnames or []), path)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = [c for c in LABEL_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (expected header {','.join(LABEL_COLUMNS)})",
            path=path,
            line=1,
        )
    reader.fieldnames = header
    for line, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        frame_value = _number(row["frame"], "frame", path, line)
        if frame_value != int(frame_value) or frame_value < 0:
            raise InputError(
                f"field 'frame' must be a non-negative integer, got {row['frame']!r}",
                path=path,
                line=line,
            )
        frame = int(frame_value)
        if frame >= num_frames:
            raise InputError(
                f"frame {frame} is past the end of the video ({num_frames} frames, 0-based)",
                path=path,
                line=line,
            )
        label = (row["label"] or "").strip().lower()
        if not label:
            raise InputError("empty 'label' field", path=path, line=line)
        x, y, w, h = (_number(row[k], k, path, line) for k in ("x", "y", "width", "height"))
        if w <= 0 or h <= 0:
            raise InputError(
                f"box width/height must be positive, got {w:g}x{h:g}", path=path, line=line
            )
        s = BORDER_SLACK
        if x < -s or y < -s or x + w > width + s or y + h > height + s:
            raise InputError(
                f"box x={x:g} y={y:g} w={w:g} h={h:g} lies outside the {width}x{height} frame",
                path=path,
                line=line,
            )
        box = [max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))]
        key = (frame, label, *box)
        if key in seen:
            warnings.warn(
                f"{path}:{line}: the same box as line {seen[key]} (frame {frame}, {label}); "
                "the repeat is dropped",
                stacklevel=2,
            )
            continue
        seen[key] = line
        out.setdefault(frame, []).append((label, box, line))
    return out


def _class_names(label_files: list[Path]) -> list[str]:
    names: set[str] = set()
    for path in label_files:
        reader = csv.reader(io.StringIO(read_text(path, "CSV file"), newline=""))
        header = [h.strip().lower() for h in next(reader, [])]
        if "label" not in header:
            continue
        column = header.index("label")
        names.update(
            row[column].strip().lower()
            for row in reader
            if len(row) > column and row[column].strip()
        )
    return sorted(names) or ["target"]


def _warn_orphan_labels(folder: Path, used: list[Path]) -> None:
    """Warn about label CSVs in the folder that belong to no video (a missing or renamed one)."""
    used_set = {p.resolve() for p in used}
    places = [folder / "labels", folder / "videos", folder]
    orphans = sorted(
        p
        for place in places
        if place.is_dir()
        for p in place.glob("*.csv")
        if p.name != CLIP_LIST and p.resolve() not in used_set
    )
    if orphans:
        more = f" and {len(orphans) - 1} more" if len(orphans) > 1 else ""
        warnings.warn(
            f"{orphans[0]}{more}: label file(s) without a video, not read (a missing video?)",
            stacklevel=3,
        )


def parse_name_list(select: str) -> tuple[list[str], Path | None, dict[str, int]]:
    """Sequence names from `select` (comma-separated, or a .txt/.csv file of one name per line;
    `#` lines are comments), the file they came from (None for an inline list) and each name's
    line in it."""
    listed = Path(select)
    if listed.suffix.lower() in (".txt", ".csv") and listed.is_file():
        lines = read_text(listed, "list of names").splitlines()
        source: Path | None = listed
    else:
        lines, source = select.split(","), None
    names, where = [], {}
    for number, text in enumerate(lines, start=1):
        name = text.strip()
        if name and not name.startswith("#"):
            names.append(name)
            where.setdefault(name, number)
    return names, source, where


def unknown_names_error(
    unknown: list[str], source: Path | None, where: dict[str, int], context: str
) -> InputError:
    """One-line error for names a selection lists but the data set lacks (file:line if listed)."""
    more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
    names = ", ".join(repr(u) for u in unknown[:5])
    line = where.get(unknown[0]) if source is not None else None
    return InputError(f"no clip named {names}{more} {context}", path=source, line=line)


def _selected(
    select: str | None, names: list[str], clip_rows: dict[str, dict[str, str]], folder: Path
) -> list[str]:
    if not select:
        return names
    splits = {row.get("split", "") for row in clip_rows.values()} - {""}
    if select in splits:
        chosen = {n for n, row in clip_rows.items() if row.get("split") == select}
        return [n for n in names if n in chosen]
    wanted, source, where = parse_name_list(select)
    unknown = [w for w in wanted if w not in names]
    if unknown:
        hint = f"; splits in {CLIP_LIST}: {', '.join(sorted(splits))}" if splits else ""
        raise unknown_names_error(unknown, source, where, f"in {folder}{hint}")
    keep = set(wanted)
    return [n for n in names if n in keep]


def read_video_csv(
    path: str | Path, select: str | None = None, class_names: list[str] | None = None
) -> FrameDataset:
    """Read a folder of videos + label CSVs (see the module docstring).

    Args:
        path: the folder (holding `videos/` + `labels/`, or videos with CSVs beside them).
        select: split name, comma-separated clip names or a file of clip names (None = all).
        class_names: the class list to use (e.g. a model's); a label outside it is an error.
    Returns:
        a `FrameDataset`, one sequence per selected video, boxes xyxy in frame pixels.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise InputError("expected a folder of videos with label CSVs", path=folder)
    videos = _videos_in(folder)
    if not videos:
        raise InputError("no videos (" + ", ".join(VIDEO_SUFFIXES) + ") in this folder", folder)
    clip_list = folder / CLIP_LIST
    clip_rows = _read_clip_list(clip_list) if clip_list.is_file() else {}
    by_name = {v.stem: v for v in videos}
    for name in clip_rows:
        if name not in by_name:
            raise InputError(f"clip '{name}' has no video in {folder}", path=clip_list)
    names = _selected(select, list(by_name), clip_rows, folder)
    if not names:
        raise InputError(f"selection {select!r} matches no clip", path=folder)
    label_files: dict[str, Path] = {}
    for name in names:
        found = label_file_for(by_name[name])
        if found is None:
            expected = _label_candidates(by_name[name])[2]
            raise InputError(f"no label CSV for this video (expected {expected})", by_name[name])
        label_files[name] = found
    all_label_files = [p for v in videos if (p := label_file_for(v)) is not None]
    _warn_orphan_labels(folder, all_label_files)
    classes = list(class_names) if class_names else _class_names(all_label_files)
    class_ids = {c: i for i, c in enumerate(classes)}
    sequences = []
    for name in names:
        video = by_name[name]
        info = video_info(video)
        rows = read_label_csv(label_files[name], info.frames, info.width, info.height)
        frames = []
        for i in range(info.frames):
            record = FrameRecord(
                sequence=name, index=i, video=video, width=info.width, height=info.height
            )
            targets = rows.get(i, [])
            if targets:
                for label, _, line in targets:
                    if label not in class_ids:
                        raise InputError(
                            f"unknown label '{label}' (classes: {', '.join(classes)})",
                            path=label_files[name],
                            line=line,
                        )
                record.boxes = np.asarray([b for _, b, _ in targets], np.float32)
                record.labels = np.asarray([class_ids[t[0]] for t in targets], np.int64)
            frames.append(record)
        sequences.append(
            Sequence(name=name, frames=frames, attributes=dict(clip_rows.get(name, {})))
        )
    return FrameDataset(
        sequences=sequences, class_names=classes, source=str(folder), format="video-csv"
    )
