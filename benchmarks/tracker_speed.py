"""Tracker cost per frame: `Tracker.update` on simulated streams of N detections per frame.

    python benchmarks/tracker_speed.py                       # 20 detections/frame, 2000 frames
    python benchmarks/tracker_speed.py --detections 5 20 50 --frames 5000

Each stream has `targets` small targets (4 px) moving at 1-6 px/frame plus clutter detections
at random places with random scores, so the tracker carries confirmed, tentative and coasting
tracks as it does on real video. Prints the median and 99th percentile of the per-frame update
wall time (ms), the mean thread CPU time (the better estimate on a shared, busy machine) and
the mean number of live tracks; the issue's requirement is < 1 ms per frame at 20
detections per frame.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mistd.tracking import Tracker


def stream(
    num_frames: int,
    detections: int,
    targets: int,
    seed: int = 0,
    size: tuple[int, int] = (640, 512),
) -> list[np.ndarray]:
    """Per frame an `[N, 5]` array x1, y1, x2, y2, score (targets first, then clutter)."""
    rng = np.random.default_rng(seed)
    width, height = size
    pos = rng.uniform([0, 0], [width, height], (targets, 2))
    vel = rng.uniform(-6, 6, (targets, 2))
    frames = []
    for _ in range(num_frames):
        pos = (pos + vel) % [width, height]
        jitter = rng.normal(0, 0.5, pos.shape)
        t_boxes = np.concatenate([pos + jitter - 2, pos + jitter + 2], axis=1)
        t_scores = rng.uniform(0.3, 0.95, targets)
        n_clutter = detections - targets
        c_pos = rng.uniform([0, 0], [width, height], (n_clutter, 2))
        c_boxes = np.concatenate([c_pos - 2, c_pos + 2], axis=1)
        c_scores = rng.uniform(0.05, 0.8, n_clutter)
        boxes = np.concatenate([t_boxes, c_boxes])
        scores = np.concatenate([t_scores, c_scores])
        frames.append(np.concatenate([boxes, scores[:, None]], axis=1))
    return frames


def measure(frames: list[np.ndarray]) -> dict[str, float]:
    """Median / p99 ms of `update` and mean live tracks over the stream."""
    tracker = Tracker()
    for f in frames[:50]:  # warm-up (imports, caches)
        tracker.update(f)
    tracker.reset()
    times, cpu, live = [], [], []
    for f in frames:
        start, start_cpu = time.perf_counter(), time.thread_time()
        tracker.update(f)
        cpu.append(time.thread_time() - start_cpu)
        times.append(time.perf_counter() - start)
        live.append(tracker.num_tracks)
    ms = 1000 * np.asarray(times)
    return {
        "median_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
        "cpu_ms": 1000 * float(np.mean(cpu)),
        "live_tracks": float(np.mean(live)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detections", type=int, nargs="+", default=[20])
    parser.add_argument("--targets", type=int, default=5)
    parser.add_argument("--frames", type=int, default=2000)
    args = parser.parse_args()
    print("| detections/frame | targets | median ms | p99 ms | mean CPU ms | live tracks |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n in args.detections:
        r = measure(stream(args.frames, n, min(args.targets, n)))
        print(
            f"| {n} | {min(args.targets, n)} | {r['median_ms']:.3f} | {r['p99_ms']:.3f} "
            f"| {r['cpu_ms']:.3f} | {r['live_tracks']:.1f} |"
        )


if __name__ == "__main__":
    main()
