"""Videos with a per-frame track file (Anti-UAV): format `anti-uav`.

The track file holds one `x y w h` line per video frame (empty or all-zero: no target), or is the
Anti-UAV json `{"exist": [...], "gt_rect": [[x, y, w, h], ...]}`. It lies beside its video with the
same or a matching name (`new_video_4_0.txt` for `4.avi`); a folder of such pairs is read as one
sequence per video.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from mistd.data.readers.common import check_box, siblings
from mistd.data.video import VIDEO_SUFFIXES, video_info
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _names_match(video_stem: str, track_stem: str) -> bool:
    """True if a track file's name belongs to a video: the same stem, or the video's stem as the
    last number/word after a letters-only prefix, optionally followed by one suffix: Anti-UAV's
    `new_video_4_0.txt` for `4.avi`, `IR_label.json` for `IR.mp4`."""
    if track_stem == video_stem:
        return True
    pattern = rf"(?:[A-Za-z_]*_)?{re.escape(video_stem)}(?:_[A-Za-z0-9]+)?"
    return re.fullmatch(pattern, track_stem) is not None


def find_track_file(video: Path) -> Path | None:
    """The track file of `video`: same stem .txt/.json, else the one whose name matches the
    video's (`_names_match`), else the single .txt/.json beside it."""
    for suffix in (".txt", ".json"):
        candidate = video.with_suffix(suffix)
        if candidate.is_file():
            return candidate
    candidates = siblings(video.parent, (".txt", ".json"))
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
    candidates = siblings(track.parent, VIDEO_SUFFIXES)
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
        videos = siblings(path, VIDEO_SUFFIXES)
        if not videos:
            raise InputError("no video files in this folder", path=path)
        tracks = {}
        for video in videos:
            track = find_track_file(video)
            if track is None:
                raise InputError("no track file (.txt or .json) matches this video", path=video)
            tracks[video] = track
        sequences = [read_anti_uav(track).sequences[0] for track in tracks.values()]
        names = [s.name for s in sequences]
        if len(set(names)) != len(names):
            raise InputError(f"videos with the same name in this folder: {names}", path=path)
        return FrameDataset(sequences=sequences, source=str(path), format="anti-uav")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        video, track = path, find_track_file(path)
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
            check_box(box, size, track, line, where=where)
            record.boxes = np.asarray([box], np.float32)
            record.labels = np.zeros(1, np.int64)
        frames.append(record)
    return FrameDataset(
        sequences=[Sequence(name=video.stem, frames=frames)], source=str(track), format="anti-uav"
    )


def looks_like_track_txt(path: Path) -> bool:
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
