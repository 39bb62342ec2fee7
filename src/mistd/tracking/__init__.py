"""Tracks from detections: an online small-target tracker, track files, track metrics and
track-confirmed detection.

- `Tracker` / `TrackerConfig` (`tracker.py`): `update(detections) -> tracks`, any detector.
- `trackfile.py`: MOT-challenge txt reading (checked: one-line errors with file and line) and
  writing, tracks JSON, per-track CSV.
- `metrics.py`: HOTA, CLEAR MOTA, IDF1 through TrackEval (when installed) and the Anti-UAV state
  accuracy; ground-truth identities from a data set's label boxes.
- `confirm.py`: `TrackConfirmedDetector`, detections re-scored by their track.
- `run.py`: stream a detector over a data set into the tracker.
"""

from mistd.tracking.tracker import Track, Tracker, TrackerConfig

__all__ = ["Track", "Tracker", "TrackerConfig"]
