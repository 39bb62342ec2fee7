"""What `mistd detect` writes, as a library function: `write_detections(predictor, source, out)`.

Under `out`: `detections.json` (COCO results: image ids = the data set's COCO ids, else 1..N in
frame order), `detections.csv` (frame,sequence,x1,y1,x2,y2,score,label,class_name; frame
numbers 1-based, as in every file mistd writes), one annotated video per sequence
(`<sequence>.mp4`: detections in green, ground truth, when the source has any, in magenta) and,
with `maps`, CHAL's map panels under `maps/`. Only the boxes at or above the display threshold
are written; `save_all` also writes every box above the decoding floor to the json (what
`mistd eval-dets` scores).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mistd.inference.predictor import Predictor
from mistd.thresholds import DECODE_FLOOR

CSV_HEADER = ("frame", "sequence", "x1", "y1", "x2", "y2", "score", "label", "class_name")


@dataclass
class DetectSummary:
    """What `write_detections` wrote: counts and paths."""

    frames: int = 0
    written: int = 0  # boxes in detections.json
    shown: int = 0  # boxes at or above the display threshold (csv, videos)
    json_path: Path | None = None
    csv_path: Path | None = None
    videos: list[Path] = field(default_factory=list)
    map_videos: list[Path] = field(default_factory=list)


def write_detections(
    predictor: Predictor,
    source: Any,
    out_dir: str | Path,
    *,
    fps: float = 25.0,
    video: bool = True,
    save_all: bool = False,
    max_frames: int | None = None,
    maps: bool = False,
    root: str | None = None,
    progress: bool = True,
) -> DetectSummary:
    """Run `predictor` over `source` (anything `Predictor.predict` takes) and write the files
    listed in the module docstring under `out_dir`."""
    import contextlib

    from mistd.data.video import SequenceVideos
    from mistd.io import write_json_atomic, write_text_atomic

    out_dir = Path(out_dir)
    threshold = predictor.thresholds.display
    summary = DetectSummary()
    coco: list[dict] = []
    rows: list[tuple] = []
    used_ids: set[int] = set()
    next_id = 1
    keep_all = predictor.keep_all
    predictor.keep_all = save_all
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="detect", unit="frame", leave=False)
    with contextlib.ExitStack() as stack:
        videos = stack.enter_context(SequenceVideos(out_dir, fps)) if video else None
        panels = None
        if maps:
            from mistd.inference.panels import MapPanelWriter

            panels = stack.enter_context(MapPanelWriter(out_dir / "maps", fps))
        try:
            for results in predictor.predict(source, max_frames=max_frames, root=root):
                summary.frames += 1
                if bar is not None:
                    bar.update(1)
                record = results.record
                image_id = record.image_id if record is not None else None
                if image_id is None or image_id in used_ids:
                    while next_id in used_ids:
                        next_id += 1
                    image_id = next_id
                used_ids.add(image_id)
                for (x1, y1, x2, y2), score, label in zip(
                    results.boxes, results.scores, results.labels, strict=True
                ):
                    if score >= DECODE_FLOOR:
                        coco.append(
                            {
                                "image_id": int(image_id),
                                "category_id": int(label) + 1,
                                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                                "score": float(score),
                            }
                        )
                shown = results.above(threshold)
                summary.shown += len(shown)
                for (x1, y1, x2, y2), score, label, name in zip(
                    shown.boxes, shown.scores, shown.labels, shown.class_names, strict=True
                ):
                    rows.append(
                        (
                            results.frame_index + 1,  # frame numbers in files: 1-based
                            results.sequence,
                            f"{x1:.2f}",
                            f"{y1:.2f}",
                            f"{x2:.2f}",
                            f"{y2:.2f}",
                            f"{score:.4f}",
                            int(label),
                            name,
                        )
                    )
                if videos is None and panels is None:
                    continue
                gt = record.boxes if record is not None else None
                image = results.plot(threshold, gt_boxes=gt)
                if videos is not None:
                    videos.write(results.sequence, image)
                if panels is not None:
                    panels.write(results, image)
        finally:
            predictor.keep_all = keep_all
            if bar is not None:
                bar.close()
        summary.videos = list(videos.videos) if videos is not None else []
        summary.map_videos = list(panels.videos) if panels is not None else []
    summary.written = len(coco)
    summary.json_path = write_json_atomic(out_dir / "detections.json", coco, indent=None)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    summary.csv_path = write_text_atomic(out_dir / "detections.csv", buffer.getvalue())
    return summary
