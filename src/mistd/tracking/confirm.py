"""Track confirmation: detections re-scored by their track (a post-processing stage).

Clutter rarely moves like a target for several frames; a one-frame blip never reaches a
confirmed track. `TrackConfirmation` is a stage of `mistd.inference.predictor.Predictor`
(`Predictor(..., confirm_tracks=True)`): it feeds each frame's detections to a `Tracker`
(causally: a detection is judged by what the tracker knows at its frame) and returns the same
boxes with scores

    score' = score                          if the detection belongs to a confirmed track
    score' = score * unconfirmed_weight     otherwise (tentative track, or no track)

so confirmed detections rank above every unconfirmed one of a similar score, and blips fall
below a deployment threshold. With `boost`, a detection on a confirmed track gets at least its
track's score (a target whose score dips for a frame keeps its rank). The predictor calls
`reset()` at every new sequence.
"""

from __future__ import annotations

import numpy as np

from mistd.errors import check_range
from mistd.tracking.tracker import Track, Tracker, TrackerConfig


class TrackConfirmation:
    """Post-processing stage: `stage(results) -> results` re-scored by a `Tracker`.

    Args:
        config: tracker settings (defaults when None; `Predictor` passes the model's track
            threshold, `Predictor.tracker_config`).
        unconfirmed_weight: score factor of detections not on a confirmed track.
        boost: raise confirmed detections to at least their track's score.

    Each output keeps, in `results.extra`, `raw` (the detections before re-scoring) and
    `tracks` (the confirmed tracks of the frame, `Tracker.update`'s result).
    """

    def __init__(
        self,
        config: TrackerConfig | None = None,
        unconfirmed_weight: float = 0.1,
        boost: bool = False,
    ):
        check_range("--unconfirmed-weight", unconfirmed_weight, "[0, 1]")
        self.tracker = Tracker(config)
        self.unconfirmed_weight = float(unconfirmed_weight)
        self.boost = boost
        self.tracks: list[Track] = []

    def reset(self) -> None:
        self.tracker.reset()
        self.tracks = []

    def __call__(self, results):
        self.tracks = self.tracker.update(results)
        scores = rescore(results.scores, self.tracks, self.unconfirmed_weight, self.boost)
        out = results[np.arange(len(results))]
        out.scores = scores
        out.extra["raw"] = results
        out.extra["tracks"] = self.tracks
        return out

    def __repr__(self) -> str:
        return (
            f"TrackConfirmation(unconfirmed_weight={self.unconfirmed_weight}, boost={self.boost})"
        )


def rescore(
    scores: np.ndarray, tracks: list[Track], unconfirmed_weight: float, boost: bool = False
) -> np.ndarray:
    """`scores [N]` re-scored by `tracks = tracker.update(detections)` (float32)."""
    scores = np.asarray(scores, np.float64).reshape(-1)
    new = scores * unconfirmed_weight
    for track in tracks:
        d = track.detection_index
        new[d] = max(scores[d], track.score) if boost else scores[d]
    return new.astype(np.float32)
