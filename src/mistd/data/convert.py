"""`mistd data convert`: any readable data set -> the mistd layout.

Output (`DIR/`): `images/<sequence>/<k>.png` (k = 0, 1, ... position in the sequence; 8- or 16-bit
kept), `coco.json` and `uestc.txt` (paths relative to `DIR`). Everything is written into a
temporary sibling folder that is renamed onto `DIR` at the end, so an error never leaves a
half-written data set (and `--overwrite` replaces an old one only once the new one is complete).
"""

from __future__ import annotations

import re
from pathlib import Path

from mistd.data.readers.frames import load_frame
from mistd.data.writers import write_coco_json, write_image, write_uestc_txt
from mistd.errors import InputError
from mistd.io import atomic_folder, check_disjoint
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _safe_names(names: list[str]) -> list[str]:
    """Folder-safe, unique sequence names."""
    out, seen = [], set()
    for name in names:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "seq"
        candidate, n = safe, 2
        while candidate in seen:
            candidate = f"{safe}_{n}"
            n += 1
        seen.add(candidate)
        out.append(candidate)
    return out


def _write_frames(
    dataset: FrameDataset, out: Path, max_frames: int | None, progress: bool
) -> FrameDataset:
    from tqdm import tqdm

    total = sum(min(len(s), max_frames or len(s)) for s in dataset.sequences)
    bar = tqdm(total=total, desc="convert", unit="frame", disable=not progress)
    sequences = []
    for seq, name in zip(
        dataset.sequences, _safe_names([s.name for s in dataset.sequences]), strict=True
    ):
        folder = out / "images" / name
        folder.mkdir(parents=True)
        frames = seq.frames[:max_frames] if max_frames else seq.frames
        records, first = [], None
        for k, record in enumerate(frames):
            image, _ = load_frame(record)
            source = record.path or record.video
            if first is None:
                first = image.shape
            elif image.shape != first:
                raise InputError(
                    f"frame size {image.shape[1]}x{image.shape[0]} differs from "
                    f"{first[1]}x{first[0]} of the first frame of sequence '{seq.name}'",
                    path=source,
                )
            path = folder / f"{k}.png"
            write_image(path, image)
            records.append(
                FrameRecord(
                    sequence=name,
                    index=k,
                    path=path,
                    boxes=record.boxes.copy(),
                    labels=record.labels.copy(),
                    width=image.shape[1],
                    height=image.shape[0],
                )
            )
            bar.update(1)
        sequences.append(Sequence(name, records))
    bar.close()
    return FrameDataset(
        sequences=sequences,
        class_names=list(dataset.class_names),
        source=str(out),
        format="coco",
    )


def convert_dataset(
    dataset: FrameDataset,
    out: str | Path,
    *,
    overwrite: bool = False,
    max_frames: int | None = None,
    progress: bool = True,
) -> Path:
    """Write `dataset` to `out` in the mistd layout; returns `out`.

    Args:
        dataset: any data set read by `read_dataset` (image- or video-backed).
        out: output folder; must not exist or be empty unless `overwrite`.
        overwrite: replace an existing non-empty `out` (only after the new one is complete).
        max_frames: keep only the first `max_frames` frames of each sequence.
        progress: show a progress bar.
    """
    out = Path(out)
    if max_frames is not None and max_frames < 1:
        raise InputError(f"--max-frames must be >= 1, got {max_frames}")
    inputs = {Path(dataset.source)} | {
        Path(r.path or r.video).parent for r in dataset.frames() if (r.path or r.video)
    }
    check_disjoint(out, sorted(inputs))
    with atomic_folder(out, overwrite) as tmp:
        written = _write_frames(dataset, tmp, max_frames, progress)
        # Index paths are relative to the folder, so they stay valid after the rename.
        write_coco_json(written, tmp / "coco.json", tmp)
        write_uestc_txt(written, tmp / "uestc.txt", tmp)
    return out
