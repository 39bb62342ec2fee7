"""Track files: MOT-challenge txt (read with checks, write), tracks JSON and per-track CSV.

A sequence's tracks are an array `[N, 7]` float64 of rows `frame, id, x, y, w, h, score` (frame
1-based as in MOT challenge files, box top-left + size in pixels), sorted by frame then id. A
MOT line is `frame,id,x,y,w,h,score,x3d,y3d,z3d` (the last three -1); reading accepts 6 or more
comma- or whitespace-separated numbers and ignores columns past the 7th. Several sequences are a
folder of `<sequence>.txt` files (the layout TrackEval reads).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from mistd.errors import InputError, short
from mistd.io import read_text, write_json_atomic, write_text_atomic

COLUMNS = ("frame", "id", "x", "y", "w", "h", "score")
CSV_HEADER = (
    "sequence",
    "track_id",
    "first_frame",
    "last_frame",
    "frames",
    "span",
    "mean_score",
    "max_score",
    "mean_speed_px_per_frame",
    "path_length_px",
    "mean_width",
    "mean_height",
)


def empty_rows() -> np.ndarray:
    """An empty `[0, 7]` track array."""
    return np.zeros((0, 7), np.float64)


# Track ids are kept as float64 values: above 2^53 two ids could read as one.
MAX_TRACK_ID = 2**53


def _echo(line: str) -> str:
    """A line quoted for a message, cut to a readable length, invisible characters named."""
    text = short(line)
    for char, name in (("\ufeff", "a byte-order mark U+FEFF"), ("\u200b", "a zero-width space")):
        if char in line:
            text += f" (it holds {name}: remove it)"
    return text


def read_mot(path: str | Path, num_frames: int | None = None) -> np.ndarray:
    """Read and check one MOT-challenge txt file -> `[N, 7]` rows (frame, id, x, y, w, h, score).

    Args:
        path: the file.
        num_frames: frames in the sequence; frame numbers outside 1..num_frames are errors.
    Raises InputError (naming the file and line) for non-numeric fields, fewer than six columns,
    a frame number that is not a whole number >= 1 (or past `num_frames`), a non-integer id,
    negative width or height, or an id that appears twice in one frame.
    """
    path = Path(path)
    try:
        text = read_text(path, "track file")  # UTF-8; a leading byte-order mark is dropped
    except OSError as exc:
        raise InputError(f"cannot read the track file ({exc.strerror or exc})", path=path) from None
    rows: list[list[float]] = []
    seen: dict[tuple[int, int], int] = {}
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = [f for f in re.split(r"[\s,]+", line) if f]
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise InputError(
                f"expected numbers 'frame,id,x,y,w,h[,score,...]', got {_echo(line)}",
                path=path,
                line=line_no,
            ) from None
        if len(values) < 6 or not np.all(np.isfinite(values[:7])):
            raise InputError(
                f"expected at least 6 finite numbers 'frame,id,x,y,w,h[,score,...]', got "
                f"{_echo(line)}",
                path=path,
                line=line_no,
            )
        frame, track_id, x, y, w, h = values[:6]
        score = values[6] if len(values) > 6 else 1.0
        if frame != int(frame) or frame < 1:
            raise InputError(
                f"unknown frame number {fields[0]} (frames are whole numbers from 1)",
                path=path,
                line=line_no,
            )
        if num_frames is not None and frame > num_frames:
            raise InputError(
                f"unknown frame number {int(frame)}: the sequence has {num_frames} frames "
                f"(1..{num_frames})",
                path=path,
                line=line_no,
            )
        if (
            track_id != int(track_id)
            or not 0 <= track_id < MAX_TRACK_ID
            or (fields[1].lstrip("+-").isdigit() and int(fields[1]) >= MAX_TRACK_ID)
        ):
            raise InputError(
                f"track id must be a whole number from 0 to {MAX_TRACK_ID - 1}, got "
                f"{short(fields[1])}",
                path,
                line_no,
            )
        if w < 0 or h < 0:
            raise InputError(
                f"negative box size (w={fields[4]}, h={fields[5]}); expected x,y,w,h with w,h >= 0",
                path=path,
                line=line_no,
            )
        key = (int(frame), int(track_id))
        if key in seen:
            raise InputError(
                f"duplicate id {key[1]} in frame {key[0]} (first at line {seen[key]}); "
                "each id appears at most once per frame",
                path=path,
                line=line_no,
            )
        seen[key] = line_no
        rows.append([frame, track_id, x, y, w, h, score])
    if not rows:
        return empty_rows()
    array = np.asarray(rows, np.float64)
    return array[np.lexsort((array[:, 1], array[:, 0]))]


def mot_text(rows: np.ndarray) -> str:
    """MOT-challenge text of `[N, 7]` rows (`frame,id,x,y,w,h,score,-1,-1,-1`), sorted by
    frame then id."""
    rows = np.asarray(rows, np.float64).reshape(-1, 7)
    rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))]
    lines = [
        f"{int(f)},{int(i)},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{s:.4f},-1,-1,-1"
        for f, i, x, y, w, h, s in rows
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def write_mot(path: str | Path, rows: np.ndarray) -> Path:
    """Write `[N, 7]` rows as a MOT-challenge txt file (atomically)."""
    return write_text_atomic(path, mot_text(rows))


def sequence_name(path: Path) -> str:
    """Sequence name of a per-sequence track file (`<sequence>.txt`)."""
    return path.stem


def read_track_files(
    path: str | Path, num_frames: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """A MOT txt file (one sequence, named by its stem) or a folder of them -> {sequence: rows}.

    `num_frames` (sequence -> frames) bounds the frame numbers of sequences it names.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise InputError("no .txt track files in this folder", path=path)
    elif path.is_file():
        files = [path]
    else:
        raise InputError("no such file or folder", path=path)
    frames = num_frames or {}
    return {sequence_name(f): read_mot(f, frames.get(sequence_name(f))) for f in files}


def looks_like_mot(path: str | Path) -> bool:
    """Whether `path` is a MOT txt file, or a folder of them (first data line has >= 6 numbers)."""
    path = Path(path)
    files = sorted(path.glob("*.txt")) if path.is_dir() else [path]
    if not files or path.suffix.lower() not in (".txt", "") or not files[0].is_file():
        return False
    for raw in files[0].read_text(errors="replace").splitlines():
        fields = [f for f in re.split(r"[\s,]+", raw.strip()) if f]
        if fields:
            return len(fields) >= 6
    return True


# --------------------------------------------------------------------------- JSON and CSV


def track_summary(sequence: str, rows: np.ndarray) -> list[dict]:
    """Per-track statistics of one sequence's rows (one dict per track id, CSV_HEADER keys)."""
    out = []
    rows = np.asarray(rows).reshape(-1, 7)
    for track_id in np.unique(rows[:, 1]):
        r = rows[rows[:, 1] == track_id]
        centres = r[:, 2:4] + r[:, 4:6] / 2
        steps = np.diff(centres, axis=0)
        gaps = np.diff(r[:, 0])
        step_length = np.sqrt((steps**2).sum(1)) if len(steps) else np.zeros(0)
        path_length = float(step_length.sum())
        frames_spanned = float(gaps.sum()) if len(gaps) else 0.0
        out.append(
            {
                "sequence": sequence,
                "track_id": int(track_id),
                "first_frame": int(r[0, 0]),
                "last_frame": int(r[-1, 0]),
                "frames": len(r),
                "span": int(r[-1, 0] - r[0, 0] + 1),
                "mean_score": round(float(r[:, 6].mean()), 4),
                "max_score": round(float(r[:, 6].max()), 4),
                "mean_speed_px_per_frame": round(path_length / frames_spanned, 3)
                if frames_spanned
                else 0.0,
                "path_length_px": round(path_length, 2),
                "mean_width": round(float(r[:, 4].mean()), 2),
                "mean_height": round(float(r[:, 5].mean()), 2),
            }
        )
    return out


def write_track_csv(path: str | Path, tracks: dict[str, np.ndarray]) -> Path:
    """Per-track statistics of every sequence as CSV (CSV_HEADER columns), atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_HEADER, lineterminator="\n")
    writer.writeheader()
    for sequence, rows in tracks.items():
        writer.writerows(track_summary(sequence, rows))
    return write_text_atomic(path, buffer.getvalue())


def write_tracks_json(path: str | Path, tracks: dict[str, np.ndarray]) -> Path:
    """Tracks as JSON: `{"sequences": {name: [{"id", "frames", "boxes" (xywh), "scores"}]}}`
    (frames 1-based, as in the MOT files), atomically."""
    sequences = {}
    for sequence, rows in tracks.items():
        rows = np.asarray(rows).reshape(-1, 7)
        items = []
        for track_id in np.unique(rows[:, 1]):
            r = rows[rows[:, 1] == track_id]
            items.append(
                {
                    "id": int(track_id),
                    "frames": r[:, 0].astype(int).tolist(),
                    "boxes": np.round(r[:, 2:6], 2).tolist(),
                    "scores": np.round(r[:, 6], 4).tolist(),
                }
            )
        sequences[sequence] = items
    return write_json_atomic(path, {"format": "xywh, frames 1-based", "sequences": sequences})
