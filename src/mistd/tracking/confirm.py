"""Track-confirmed detection: a clip detector whose detections are re-scored by their track.

Clutter rarely moves like a target for several frames; a one-frame blip never reaches a
confirmed track. `TrackConfirmedDetector` wraps any clip detector, feeds its detections to a
`Tracker` frame by frame (causally: a detection is judged by what the tracker knows at its
frame) and returns the same boxes with scores

    score' = score                          if the detection belongs to a confirmed track
    score' = score * unconfirmed_weight     otherwise (tentative track, or no track)

so confirmed detections rank above every unconfirmed one of a similar score, and blips fall
below a deployment threshold. With `boost`, a detection on a confirmed track gets at least its
track's score (a target whose score dips for a frame keeps its rank).

Sequences: the wrapper asks its ClipSampler for at least two frames and restarts the tracker
whenever the previous key frame is not the frame before this key frame (a new sequence, a seek),
the way `StreamingClipDetector` recognises continuing clips. A detector that streams (`reset()` +
`push(frame, bit_depth)`, e.g. a learned model wrapped by `streaming_detector`) is wrapped by
`StreamingTrackConfirmedDetector` instead (`TrackConfirmedDetector.wrap` picks): frames are pushed
through it one at a time, so the model keeps its own window (one backbone pass per frame, any
`frame_stride`) and the tracker restarts with `reset()`.
"""

from __future__ import annotations

import numpy as np
import torch

from mistd.errors import check_range
from mistd.structures import Detections
from mistd.tracking.tracker import Track, Tracker, TrackerConfig


class TrackConfirmedDetector:
    """A clip detector (`num_frames`, `detect(frames [T, H, W], bit_depth) -> Detections`)
    returning `detector`'s detections re-scored by a `Tracker`.

    Args:
        detector: any clip detector (classical, learned, streaming).
        config: tracker settings (defaults when None).
        unconfirmed_weight: score factor of detections not on a confirmed track.
        boost: raise confirmed detections to at least their track's score.

    After each `detect`: `raw` (the wrapped detector's detections) and `tracks` (the confirmed
    tracks of the frame, `Tracker.update`'s result); `new_sequence` tells whether the tracker
    was restarted for this frame.
    """

    def __init__(
        self,
        detector,
        config: TrackerConfig | None = None,
        unconfirmed_weight: float = 0.1,
        boost: bool = False,
    ):
        check_range("--unconfirmed-weight", unconfirmed_weight, "[0, 1]")
        self.detector = detector
        self.tracker = Tracker(config)
        self.unconfirmed_weight = float(unconfirmed_weight)
        self.boost = boost
        self.inner_frames = int(getattr(detector, "num_frames", 1))
        self.num_frames = max(2, self.inner_frames)
        self._previous_key: np.ndarray | None = None
        self.raw: Detections = Detections.empty()
        self.tracks: list[Track] = []
        self.new_sequence = True

    def _continues(self, frames: np.ndarray) -> bool:
        previous = self._previous_key
        return (
            previous is not None
            and previous.shape == frames[-2].shape
            and np.array_equal(previous, frames[-2])
        )

    @classmethod
    def wrap(
        cls,
        detector,
        config: TrackerConfig | None = None,
        unconfirmed_weight: float = 0.1,
        boost: bool = False,
    ) -> TrackConfirmedDetector:
        """`detector` wrapped: by `StreamingTrackConfirmedDetector` when it streams."""
        streams = hasattr(detector, "push") and hasattr(detector, "reset")
        kind = StreamingTrackConfirmedDetector if streams else cls
        return kind(detector, config, unconfirmed_weight, boost)

    def _track(self, raw: Detections) -> Detections:
        self.raw = raw
        self.tracks = self.tracker.update(raw)
        return rescore(raw, self.tracks, self.unconfirmed_weight, self.boost)

    def detect(self, frames: np.ndarray, bit_depth: int) -> Detections:
        """Detections of the key frame (last of `frames [T, H, W]`), re-scored by their track."""
        frames = np.asarray(frames)
        if frames.ndim == 2:
            frames = frames[None]
        self.new_sequence = frames.shape[0] < 2 or not self._continues(frames)
        if self.new_sequence:
            self.tracker.reset()
        inner = frames[-self.inner_frames :] if frames.shape[0] >= self.inner_frames else frames
        raw = self.detector.detect(inner, bit_depth).to("cpu")
        self._previous_key = frames[-1].copy()
        return self._track(raw)

    def __repr__(self) -> str:
        return (
            f"TrackConfirmedDetector({self.detector!r}, unconfirmed_weight="
            f"{self.unconfirmed_weight}, boost={self.boost})"
        )


class StreamingTrackConfirmedDetector(TrackConfirmedDetector):
    """`TrackConfirmedDetector` of a streaming detector: `reset()` starts a sequence (the
    detector's window and the tracker), `push(frame [H, W], bit_depth)` detects and re-scores
    the next frame. `detect` (a whole window) stays available."""

    def reset(self) -> None:
        self.detector.reset()
        self.tracker.reset()
        self._previous_key = None
        self.new_sequence = True

    def push(self, frame: np.ndarray, bit_depth: int) -> Detections:
        self.new_sequence = self.tracker.frame_index < 0
        raw = self.detector.push(frame, bit_depth).to("cpu")
        self._previous_key = None  # a later `detect` starts a new sequence
        return self._track(raw)


def rescore(
    detections: Detections, tracks: list[Track], unconfirmed_weight: float, boost: bool = False
) -> Detections:
    """`detections` with track-confirmed scores, given `tracks = tracker.update(detections)`."""
    scores = detections.scores.detach().float().cpu().numpy().astype(np.float64)
    new = scores * unconfirmed_weight
    for track in tracks:
        d = track.detection_index
        new[d] = max(scores[d], track.score) if boost else scores[d]
    return Detections(
        detections.boxes,
        torch.as_tensor(new, dtype=torch.float32),
        detections.labels,
        detections.maps,
    )
