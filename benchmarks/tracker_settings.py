"""Tracker settings on cached detections: the same boxes, several `TrackerConfig`s, one table.

    python benchmarks/tracker_settings.py          # detect what is missing, print the table
    python benchmarks/tracker_settings.py --rows yolox-ir-s-anti_uav tophat-anti_uav
    python benchmarks/tracker_settings.py --settings default "acceleration_std=3 min_hits=2"

Detection is the expensive part and does not depend on the tracker: each row (the detector and
data of `benchmarks/tracking_accuracy.py`, the same class-agnostic, native-size set-up as
`mistd track`) is streamed once and its per-frame detections (score >= 0.05, the tracker's lowest
useful score) are cached in `<out>/<row>/detections.npz`. Every setting then replays the tracker
over the cache and is scored by the same functions as `mistd track` (TrackEval HOTA / MOTA /
IDF1 / IDSW, Anti-UAV state accuracy SA). A setting is a space-separated list of TrackerConfig
`key=value` (as on the `mistd track` command line); "default" is `TrackerConfig()` as it is (high
and birth thresholds 0.5: what `mistd track` gives a classical detector; a learned model gets
0.3, its `track_threshold`, i.e. the "high_threshold=0.3 birth_threshold=0.3" row).

Measured with it (docs/results.md, "Tracking"): 0.3 for learned models was chosen on the rows
of `tracking_accuracy.py` and checked on `HELD_OUT`; "acceleration_std=3 gate_probability=0.999"
is the setting for a moving camera (Anti-UAV), not the default (it swaps identities of nearby
targets on drone_ir).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tracking_accuracy import ROWS as TRACKING_ROWS  # noqa: E402

# A second drone_ir val subset, disjoint from tracking_accuracy's (every 12th val clip from the
# 7th): settings chosen on the other rows are checked here on clips they were not chosen on.
HELD_OUT = "IR_AIRPLANE_044,IR_BIRD_044,IR_DRONE_039,IR_DRONE_107,IR_HELICOPTER_039"
ROWS = {
    **TRACKING_ROWS,
    "yolox-ir-s-drone_ir-heldout": (
        ["--weights", "yolox-ir-s"],
        "drone_ir val, 5 other clips",
        "drone_ir",
        ["--select", HELD_OUT],
    ),
    "tophat-drone_ir-heldout": (
        ["--model", "tophat"],
        "drone_ir val, 5 other clips",
        "drone_ir",
        ["--select", HELD_OUT],
    ),
}
MIN_SCORE = 0.05  # below every low_threshold the settings use


def detect_row(row: str, data_root: str, path: Path) -> None:
    """Stream row's detector over its data once; save per-frame detections and ground truth."""
    from mistd.data.readers import read_dataset
    from mistd.data.selection import select_sequences
    from mistd.evaluation.runner import detect_sequences
    from mistd.inference.predictor import open_predictor
    from mistd.io import atomic_path
    from mistd.tracking.metrics import gt_tracks_from_dataset

    args, _, data, data_args = ROWS[row]
    opts = dict(zip(args[::2], args[1::2], strict=True))
    select = dict(zip(data_args[::2], data_args[1::2], strict=True)).get("--select")
    source = f"{data_root.rstrip('/')}/{data}"
    predictor, _ = open_predictor(
        opts.get("--model"), opts.get("--weights"), input_size=opts.get("--input-size")
    )
    dataset = read_dataset(source, select=select)
    dataset = select_sequences(dataset, source, None, None, merge_classes=True)
    predictor.set_merge_classes(predictor.merges_for(dataset.class_names))
    arrays: dict[str, np.ndarray] = {}
    for found in detect_sequences(predictor, dataset, progress=True):
        keep = found.scores >= MIN_SCORE
        rows = np.concatenate([found.boxes[keep], found.scores[keep, None]], axis=1)
        arrays[f"det/{found.sequence}/{len(arrays)}"] = rows.astype(np.float32)  # in frame order
    gt, _ = gt_tracks_from_dataset(dataset)
    arrays.update({f"gt/{sequence}": rows for sequence, rows in gt.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)


def load_row(path: Path) -> dict[str, tuple[list[np.ndarray], np.ndarray]]:
    """{sequence: (per-frame detections [N, 5] in frame order, ground-truth track rows [G, 7])}."""
    data = np.load(path)
    frames: dict[str, dict[int, np.ndarray]] = {}
    for name in data.files:
        kind, rest = name.split("/", 1)
        if kind == "det":
            sequence, order = rest.rsplit("/", 1)
            frames.setdefault(sequence, {})[int(order)] = data[name]
    return {s: ([f[k] for k in sorted(f)], data[f"gt/{s}"]) for s, f in frames.items()}


def score_setting(cached, setting: list[str]) -> dict[str, float]:
    """Track every cached sequence with `setting`; the track metrics over all sequences."""
    from mistd.tracking import Tracker, tracker_config
    from mistd.tracking.metrics import evaluate_tracks

    tracker = Tracker(tracker_config(setting))
    gt, tracks, counts = {}, {}, {}
    for sequence, (dets, gt_rows) in cached.items():
        tracker.reset()
        rows = []
        for t, frame in enumerate(dets):
            for track in tracker.update(frame):
                x1, y1, x2, y2 = track.box
                rows.append([t + 1, track.track_id, x1, y1, x2 - x1, y2 - y1, track.score])
        tracks[sequence] = np.asarray(rows, np.float64).reshape(-1, 7)
        gt[sequence] = np.asarray(gt_rows, np.float64)
        counts[sequence] = len(dets)
    result = evaluate_tracks(gt, tracks, counts)
    te = result["trackeval"]["all"]
    out = {k: te[k] for k in ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW")}
    out["SA"] = result["state_accuracy"].get("all")
    out["tracks"] = sum(len(np.unique(r[:, 1])) for r in tracks.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/real")
    parser.add_argument("--out", type=Path, default=Path("runs/tracker_settings"))
    parser.add_argument("--rows", nargs="*", choices=sorted(ROWS), default=sorted(ROWS))
    parser.add_argument(
        "--settings",
        nargs="*",
        default=[
            "default",
            "high_threshold=0.3 birth_threshold=0.3",
            "acceleration_std=3 gate_probability=0.999",
            "high_threshold=0.3 birth_threshold=0.3 acceleration_std=3 gate_probability=0.999",
        ],
    )
    parser.add_argument("--detect-only", action="store_true", help="fill the cache, no table")
    args = parser.parse_args()
    for row in args.rows:
        path = args.out / row / "detections.npz"
        if not path.is_file():
            print(f"[{row}] detecting ...", flush=True)
            detect_row(row, args.data_root, path)
    if args.detect_only:
        return
    print("| row | setting | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | SA | tracks |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in args.rows:
        cached = load_row(args.out / row / "detections.npz")
        for setting in args.settings:
            m = score_setting(cached, [] if setting == "default" else setting.split())

            def pct(v):
                return "-" if v is None else f"{100 * v:.1f}"

            print(
                f"| {row} | {setting} | {pct(m['HOTA'])} | {pct(m['DetA'])} | {pct(m['AssA'])} "
                f"| {pct(m['MOTA'])} | {pct(m['IDF1'])} | {int(m['IDSW'])} | {pct(m['SA'])} "
                f"| {m['tracks']} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
