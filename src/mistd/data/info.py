"""`mistd data info`: what a data set holds (sequences, frames, sizes, targets, box sizes).

Everything comes from the annotations, except the bit depth, which is read from the first frame
of each sequence (up to `MAX_DEPTH_PROBES` sequences) when its file exists.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from mistd.errors import InputError
from mistd.structures import FrameDataset

MAX_DEPTH_PROBES = 50


def _stats(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"mean": None, "min": None, "max": None}
    return {
        "mean": round(float(values.mean()), 4),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def _percentiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {"p5": None, "p50": None, "p95": None}
    p5, p50, p95 = np.percentile(values, [5, 50, 95])
    return {"p5": round(float(p5), 3), "p50": round(float(p50), 3), "p95": round(float(p95), 3)}


def _probe_bit_depths(dataset: FrameDataset) -> tuple[dict[str, int], int]:
    from mistd.data.readers.frames import load_frame

    depths: Counter[int] = Counter()
    probed = 0
    for seq in dataset.sequences[:MAX_DEPTH_PROBES]:
        record = seq.frames[0]
        exists = (record.path is not None and Path(record.path).is_file()) or (
            record.video is not None and Path(record.video).is_file()
        )
        if not exists:
            continue
        try:
            _, depth = load_frame(record)
        except InputError:
            continue
        depths[depth] += 1
        probed += 1
    return {str(k): v for k, v in sorted(depths.items())}, probed


def summarize(dataset: FrameDataset) -> dict:
    """A JSON-able summary of `dataset`.

    Keys: format, source, sequences, frames, classes, image_sizes ({"WxH": frames, "unknown":
    frames}), bit_depth ({"8": sequences probed, ...}), targets (total, per_frame mean/min/max),
    empty_frames, box_width / box_height (p5/p50/p95 pixels), per_sequence, notes.
    """
    counts = np.array([r.num_targets for r in dataset.frames()], dtype=np.int64)
    boxes = [r.boxes for r in dataset.frames() if r.num_targets]
    all_boxes = np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32)
    sizes: Counter[str] = Counter()
    for r in dataset.frames():
        sizes["unknown" if r.width is None or r.height is None else f"{r.width}x{r.height}"] += 1
    depths, probed = _probe_bit_depths(dataset)
    notes = []
    if sizes.get("unknown"):
        notes.append(
            f"{sizes['unknown']} frames have no known size: their image files were not found "
            "(pass --root to point at the images, or read the COCO json, which stores sizes); "
            "boxes were not checked against the image borders"
        )
    if not depths:
        notes.append("bit depth unknown: no frame file could be read")
    per_sequence = []
    for seq in dataset.sequences:
        frame_sizes = {
            f"{r.width}x{r.height}" if r.width is not None else "unknown" for r in seq.frames
        }
        per_sequence.append(
            {
                "name": seq.name,
                "frames": len(seq),
                "targets": int(sum(r.num_targets for r in seq.frames)),
                "empty_frames": int(sum(r.num_targets == 0 for r in seq.frames)),
                "size": ", ".join(sorted(frame_sizes)),
            }
        )
    return {
        "format": dataset.format,
        "source": dataset.source,
        "sequences": len(dataset.sequences),
        "frames": int(counts.size),
        "classes": list(dataset.class_names),
        "image_sizes": dict(sizes.most_common()),
        "bit_depth": depths,
        "bit_depth_probed_sequences": probed,
        "targets": {"total": int(counts.sum()), "per_frame": _stats(counts.astype(np.float64))},
        "empty_frames": int((counts == 0).sum()),
        "box_width": _percentiles(all_boxes[:, 2] - all_boxes[:, 0]),
        "box_height": _percentiles(all_boxes[:, 3] - all_boxes[:, 1]),
        "per_sequence": per_sequence,
        "notes": notes,
    }


def print_summary(summary: dict, max_sequences: int = 30) -> None:
    """Print `summary` as rich tables (one overview, one per-sequence table)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    overview = Table(title=f"{summary['source']} ({summary['format']})", show_header=False)
    overview.add_column("field", style="bold")
    overview.add_column("value")
    per_frame = summary["targets"]["per_frame"]
    bw, bh = summary["box_width"], summary["box_height"]

    def fmt(p: dict) -> str:
        return "-" if p["p50"] is None else f"{p['p5']:g} / {p['p50']:g} / {p['p95']:g}"

    rows = [
        ("sequences", str(summary["sequences"])),
        ("frames", str(summary["frames"])),
        ("classes", ", ".join(summary["classes"])),
        ("image sizes", ", ".join(f"{k}: {v}" for k, v in summary["image_sizes"].items())),
        (
            "bit depth",
            ", ".join(f"{k}-bit: {v} seq" for k, v in summary["bit_depth"].items()) or "unknown",
        ),
        ("targets", str(summary["targets"]["total"])),
        (
            "targets / frame",
            "-"
            if per_frame["mean"] is None
            else f"mean {per_frame['mean']:g}, min {per_frame['min']:g}, max {per_frame['max']:g}",
        ),
        ("empty frames", str(summary["empty_frames"])),
        ("box width p5/p50/p95", fmt(bw)),
        ("box height p5/p50/p95", fmt(bh)),
    ]
    for field, value in rows:
        overview.add_row(field, value)
    console.print(overview)
    sequences = summary["per_sequence"]
    if len(sequences) > 1:
        table = Table(title="sequences")
        for column in ("name", "frames", "targets", "empty", "size"):
            table.add_column(column, justify="left" if column in ("name", "size") else "right")
        for seq in sequences[:max_sequences]:
            table.add_row(
                seq["name"],
                str(seq["frames"]),
                str(seq["targets"]),
                str(seq["empty_frames"]),
                seq["size"],
            )
        if len(sequences) > max_sequences:
            table.add_row(f"... {len(sequences) - max_sequences} more", "", "", "", "")
        console.print(table)
    for note in summary["notes"]:
        console.print(f"note: {note}")
