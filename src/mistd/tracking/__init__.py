"""Tracks from detections: an online small-target tracker, track files, track metrics and
track-confirmed detection.

- `Tracker` / `TrackerConfig` (`tracker.py`): `update(detections) -> tracks`, any detector;
  `tracker_config(overrides, track_threshold)` (`Predictor.tracker_config` passes the model's).
- `trackfile.py`: MOT-challenge txt reading (checked: one-line errors with file and line) and
  writing, tracks JSON, per-track CSV.
- `metrics.py`: HOTA, CLEAR MOTA, IDF1 through TrackEval (when installed) and the Anti-UAV state
  accuracy; ground-truth identities from a data set's label boxes.
- `confirm.py`: `TrackConfirmation`, the `Predictor` stage re-scoring detections by their track.
"""

from mistd.tracking.tracker import Track, Tracker, TrackerConfig, tracker_config

__all__ = ["Track", "Tracker", "TrackerConfig", "tracker_config"]
