"""Online multi-target tracker for small targets (`Tracker.update(detections) -> tracks`).

Small infrared targets are a few pixels wide and often move more than their own size between
frames, so boxes of one target in consecutive frames need not overlap: IoU association (SORT,
ByteTrack) fails there. This tracker associates by the CENTRE: a constant-velocity Kalman filter
per track predicts where the target should be, a detection is a candidate only inside the
filter's chi-square gate (Mahalanobis distance of the centres, which widens with the track's
uncertainty: a new track, or one that has missed frames, accepts farther detections), and the
assignment cost is the Mahalanobis distance (or `1 - NWD` of the predicted and detected boxes).

Matching follows ByteTrack (Zhang et al. 2022, `yolox/tracker/byte_tracker.py::update`):
1. high-score detections (`score >= high_threshold`) against confirmed tracks (also those
   coasting through misses);
2. low-score detections (`low_threshold <= score < high_threshold`) against the confirmed tracks
   left over, so a target whose score dips is kept rather than lost;
3. the high-score detections left over against tentative tracks;
4. each high-score detection still left (score >= `birth_threshold`) starts a tentative track.
A tentative track is confirmed after `min_hits` hits (and dies on `tentative_max_misses + 1`
misses); a confirmed track dies after `max_misses` consecutive misses. Each track keeps a score:
an exponential moving average of its detections' scores (a miss counts as 0).

    tracker = Tracker(TrackerConfig(min_hits=3, max_misses=15))
    for detections in per_frame_detections:         # mistd.structures.Detections or [N, 5]
        for track in tracker.update(detections):    # confirmed tracks seen in this frame
            print(track.track_id, track.box, track.score)
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np
from scipy.optimize import linear_sum_assignment

from mistd.config import check_ranges
from mistd.structures import Detections

TENTATIVE, CONFIRMED = 0, 1
_CHI2_2DOF = {0.9: 4.605, 0.95: 5.991, 0.99: 9.210, 0.999: 13.816}


@dataclass
class TrackerConfig:
    """Tracker settings (pixels and frames; all defaults are for 2–30 px targets at ~25 fps).

    Attributes:
        high_threshold: detections at or above it are matched first and may start tracks.
        low_threshold: detections below it are ignored; between the two they only extend
            confirmed tracks (ByteTrack's second stage).
        birth_threshold: minimum score of a detection that starts a tentative track.
        min_hits: hits (detections matched, counting the first) that confirm a track (N).
        max_misses: consecutive missed frames after which a confirmed track dies (M).
        tentative_max_misses: misses a tentative track survives (0: dies on its first miss).
        gate_probability: chi-square gate of the centre innovation (0.9, 0.95, 0.99 or 0.999).
        min_gate_px: the gate never gets narrower than this many pixels (sub-pixel noise).
        cost: "mahalanobis" (centre distance under the filter's uncertainty) or "nwd"
            (`1 - NWD` of predicted and detected boxes, NWD constant `nwd_constant`).
        nwd_constant: NWD's C in pixels (12, as the CHAL official loss).
        acceleration_std: process noise, px/frame^2 (how fast a target may change velocity).
        measurement_std: detection centre noise, px.
        initial_velocity_std: velocity uncertainty of a new track, px/frame: the gate of its
            second frame is about `sqrt(chi2) * initial_velocity_std` px wide, so targets that
            move more than their size per frame are still associated.
        score_momentum: track score update `score = m * score + (1 - m) * evidence`.
        size_momentum: box size smoothing for predicted boxes (width and height of a track).
        trail_length: centres kept per track for drawing trails.
    """

    high_threshold: float = 0.5
    low_threshold: float = 0.1
    birth_threshold: float = 0.5
    min_hits: int = 3
    max_misses: int = 15
    tentative_max_misses: int = 0
    gate_probability: float = 0.99
    min_gate_px: float = 3.0
    cost: str = "mahalanobis"
    nwd_constant: float = 12.0
    acceleration_std: float = 1.0
    measurement_std: float = 1.0
    initial_velocity_std: float = 8.0
    score_momentum: float = 0.7
    size_momentum: float = 0.7
    trail_length: int = 30

    VALID_RANGES: ClassVar[dict[str, str]] = {
        "high_threshold": "[0, 1]",
        "low_threshold": "[0, 1]",
        "birth_threshold": "[0, 1]",
        "min_hits": ">= 1",
        "max_misses": ">= 0",
        "tentative_max_misses": ">= 0",
        "min_gate_px": ">= 0",
        "nwd_constant": "> 0",
        "acceleration_std": "> 0",
        "measurement_std": "> 0",
        "initial_velocity_std": "> 0",
        "score_momentum": "[0, 1]",
        "size_momentum": "[0, 1]",
        "trail_length": ">= 0",
    }

    def __post_init__(self) -> None:
        check_ranges(self, prefix="tracker.")
        if self.gate_probability not in _CHI2_2DOF:
            raise ValueError(
                f"gate_probability must be one of {sorted(_CHI2_2DOF)}, got {self.gate_probability}"
            )
        if self.cost not in ("mahalanobis", "nwd"):
            raise ValueError(f"cost must be 'mahalanobis' or 'nwd', got {self.cost!r}")
        if self.min_hits < 1 or self.max_misses < 0 or self.tentative_max_misses < 0:
            raise ValueError("min_hits must be >= 1 and the miss counts >= 0")
        if not 0.0 <= self.low_threshold <= self.high_threshold:
            raise ValueError("expected 0 <= low_threshold <= high_threshold")

    @classmethod
    def keys(cls) -> list[str]:
        """Names of the settings (for `tracker.<key>=value` overrides)."""
        return [f.name for f in fields(cls)]


@dataclass
class Track:
    """A track as seen after one `update` (a snapshot; the tracker keeps its own state).

    Attributes:
        track_id: 1-based identity, unique within the tracker's life (until `reset`).
        box: `[4]` xyxy: the matched detection's box, or the predicted box when coasting.
        score: the track score (moving average of its detections' scores; misses count 0).
        detection_score: score of this frame's detection (0 when coasting).
        label: class id of its latest detection.
        confirmed: whether it has reached `min_hits`.
        hits: detections matched so far; misses: consecutive frames without one.
        age: frames since birth (0 in its first frame).
        velocity: `[2]` filtered centre velocity, px/frame.
        trail: `[K, 2]` recent centres, oldest first (for drawing).
        detection_index: index of this frame's detection in the `update` input (-1 coasting).
    """

    track_id: int
    box: np.ndarray
    score: float
    detection_score: float
    label: int
    confirmed: bool
    hits: int
    misses: int
    age: int
    velocity: np.ndarray
    trail: np.ndarray = field(repr=False)
    detection_index: int = -1


def _as_arrays(detections) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections (or an `[N, 5]`/`[N, 6]` x1,y1,x2,y2,score[,label] array) -> numpy parts."""
    if isinstance(getattr(detections, "scores", None), np.ndarray):  # inference Results
        boxes = detections.boxes.astype(np.float64).reshape(-1, 4)
        return boxes, detections.scores.astype(np.float64), detections.labels.astype(np.int64)
    if isinstance(detections, Detections):
        boxes = detections.boxes.detach().float().cpu().numpy().reshape(-1, 4)
        scores = detections.scores.detach().float().cpu().numpy().reshape(-1)
        labels = detections.labels.detach().cpu().numpy().reshape(-1).astype(np.int64)
        return boxes.astype(np.float64), scores.astype(np.float64), labels
    array = np.asarray(detections, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64)
    if array.ndim != 2 or array.shape[1] not in (5, 6):
        raise ValueError(f"expected Detections or an [N, 5|6] array, got shape {array.shape}")
    labels = array[:, 5].astype(np.int64) if array.shape[1] == 6 else np.zeros(len(array), np.int64)
    return array[:, :4], array[:, 4], labels


def tracker_config(
    overrides: list[str] | dict | None = None, track_threshold: float | None = None
) -> TrackerConfig:
    """A `TrackerConfig` with the high and birth thresholds at a detector's `track_threshold`
    (`mistd.thresholds.Thresholds.track`; `Predictor.tracker_config` passes the model's), then
    `overrides`: `key=value` strings (bare or `tracker.`-prefixed keys) or a dict.
    InputError for unknown keys or values out of range."""
    from mistd.config import apply_overrides, parse_dotted
    from mistd.errors import InputError

    parsed = dict(overrides or {}) if not isinstance(overrides, list) else parse_dotted(overrides)
    parsed = {**{k: v for k, v in parsed.items() if k != "tracker"}, **parsed.get("tracker", {})}
    base = TrackerConfig()
    if track_threshold is not None:
        base = apply_overrides(
            base, {"high_threshold": track_threshold, "birth_threshold": track_threshold}
        )
    try:
        return apply_overrides(base, parsed)
    except ValueError as exc:
        raise InputError(f"tracker settings: {exc}") from None


class Tracker:
    """Online tracker: `update(detections)` once per frame, `reset()` between sequences.

    State lives in arrays over the K live tracks (the filter runs batched, so a frame with 20
    detections costs well under a millisecond): centre state `[K, 4]` (cx, cy, vx, vy) and its
    covariance `[K, 4, 4]`, smoothed size `[K, 2]`, and per-track counters.

    Args:
        config: a `TrackerConfig` (defaults when None).

    After each `update`, `detection_track_ids` `[N]` gives the track id of every input detection
    (-1: none) and `detection_confirmed` `[N]` whether that track is confirmed; this is what
    track-confirmed detection (`mistd.tracking.confirm`) re-scores with.
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.config = config or TrackerConfig()
        c = self.config
        self._gate = _CHI2_2DOF[c.gate_probability]
        self._F = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
        # Piecewise-constant white acceleration (per-axis [[1/4, 1/2], [1/2, 1]] * sigma^2).
        q = c.acceleration_std**2
        self._Q = q * np.array(
            [[0.25, 0, 0.5, 0], [0, 0.25, 0, 0.5], [0.5, 0, 1, 0], [0, 0.5, 0, 1]], np.float64
        )
        self._R = c.measurement_std**2 * np.eye(2)
        self.reset()

    # ------------------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget every track (call between sequences); ids start again at 1."""
        self._mean = np.zeros((0, 4))
        self._cov = np.zeros((0, 4, 4))
        self._size = np.zeros((0, 2))
        self._ids = np.zeros(0, np.int64)
        self._state = np.zeros(0, np.int64)
        self._hits = np.zeros(0, np.int64)
        self._misses = np.zeros(0, np.int64)
        self._age = np.zeros(0, np.int64)
        self._score = np.zeros(0)
        self._label = np.zeros(0, np.int64)
        self._trails: list[list[tuple[float, float]]] = []
        self._next_id = 1
        self.frame_index = -1
        self.detection_track_ids = np.zeros(0, np.int64)
        self.detection_confirmed = np.zeros(0, bool)

    @property
    def num_tracks(self) -> int:
        """Live tracks (tentative and confirmed, including coasting ones)."""
        return int(self._ids.shape[0])

    # ------------------------------------------------------------------------------ filter
    def _predict(self) -> None:
        self._mean = self._mean @ self._F.T
        self._cov = self._F @ self._cov @ self._F.T + self._Q

    @staticmethod
    def _inv2(S: np.ndarray) -> np.ndarray:
        """Inverse of `[K, 2, 2]` symmetric matrices (closed form: np.linalg.inv's overhead
        dominates at this size)."""
        inv_det = 1.0 / (S[:, 0, 0] * S[:, 1, 1] - S[:, 0, 1] * S[:, 0, 1])
        out = np.empty_like(S)
        out[:, 0, 0] = S[:, 1, 1] * inv_det
        out[:, 1, 1] = S[:, 0, 0] * inv_det
        out[:, 0, 1] = out[:, 1, 0] = -S[:, 0, 1] * inv_det
        return out

    def _innovation(self, centres: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared Mahalanobis distances `[len(rows), M]` of detection centres `[M, 2]` to the
        predicted centres, and the plain distances in pixels."""
        cov = self._cov[rows]
        r2 = self.config.measurement_std**2
        a = cov[:, 0, 0, None] + r2  # innovation covariance S = [[a, b], [b, d]]
        b = cov[:, 0, 1, None]
        d = cov[:, 1, 1, None] + r2
        mean = self._mean[rows]
        dx = centres[None, :, 0] - mean[:, 0, None]  # [K, M]
        dy = centres[None, :, 1] - mean[:, 1, None]
        d2 = (d * dx * dx - 2 * b * dx * dy + a * dy * dy) / (a * d - b * b)
        return d2, np.sqrt(dx * dx + dy * dy)

    def _update_filter(self, rows: np.ndarray, centres: np.ndarray) -> None:
        P = self._cov[rows]  # [K, 4, 4]
        gain = P[:, :, :2] @ self._inv2(P[:, :2, :2] + self._R)  # [K, 4, 2]
        residual = centres - self._mean[rows, :2]
        self._mean[rows] += (gain @ residual[:, :, None])[:, :, 0]
        self._cov[rows] = P - gain @ P[:, :2, :]

    # ------------------------------------------------------------------------------ matching
    def _match(
        self, rows: np.ndarray, det_idx: np.ndarray, centres: np.ndarray, sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Gated minimum-cost assignment of tracks `rows` to detections `det_idx` -> matched
        (rows, detection indices)."""
        none = (np.zeros(0, np.int64), np.zeros(0, np.int64))
        if rows.size == 0 or det_idx.size == 0:
            return none
        d2, dist = self._innovation(centres[det_idx], rows)
        allowed = (d2 <= self._gate) | (dist <= self.config.min_gate_px)
        if not allowed.any():
            return none
        if self.config.cost == "nwd":
            delta_size = sizes[det_idx][None, :, :] - self._size[rows][:, None, :]
            w2 = dist**2 + (delta_size**2).sum(-1) / 4.0
            cost = 1.0 - np.exp(-np.sqrt(w2) / self.config.nwd_constant)
        else:
            cost = np.minimum(d2, self._gate)
        cost = np.where(allowed, cost, 1e6)
        r, c = linear_sum_assignment(cost)
        ok = allowed[r, c]
        return rows[r[ok]], det_idx[c[ok]]

    # ------------------------------------------------------------------------------ update
    def update(self, detections) -> list[Track]:
        """Advance one frame with this frame's detections; the confirmed tracks seen in it.

        Args:
            detections: `Detections` (boxes `[N, 4]` xyxy, scores `[N]`, labels `[N]`) or an
                `[N, 5]` / `[N, 6]` array x1, y1, x2, y2, score[, label]; any detector's output.
        Returns:
            the confirmed tracks matched to a detection in this frame (newly confirmed ones
            included), as `Track` snapshots ordered by id. Coasting tracks are kept internally
            but not returned.
        """
        c = self.config
        boxes, scores, labels = _as_arrays(detections)
        n = boxes.shape[0]
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2.0
        sizes = np.clip(boxes[:, 2:] - boxes[:, :2], 0.0, None)
        self.frame_index += 1
        self._predict()

        high = np.flatnonzero(scores >= c.high_threshold)
        low = np.flatnonzero((scores >= c.low_threshold) & (scores < c.high_threshold))
        confirmed = np.flatnonzero(self._state == CONFIRMED)
        tentative = np.flatnonzero(self._state == TENTATIVE)

        det_used = np.zeros(n, bool)
        row_used = np.zeros(self.num_tracks, bool)
        rows_1, dets_1 = self._match(confirmed, high, centres, sizes)
        row_used[rows_1] = det_used[dets_1] = True
        rows_2, dets_2 = self._match(confirmed[~row_used[confirmed]], low, centres, sizes)
        det_used[dets_2] = True
        rows_3, dets_3 = self._match(tentative, high[~det_used[high]], centres, sizes)
        det_used[dets_3] = True
        rows = np.concatenate([rows_1, rows_2, rows_3])
        dets = np.concatenate([dets_1, dets_2, dets_3])

        det_track_ids = np.full(n, -1, np.int64)
        matched_rows = np.zeros(self.num_tracks, bool)
        centre_list = centres.tolist()
        if rows.size:
            matched_rows[rows] = True
            self._update_filter(rows, centres[dets])
            m = c.size_momentum
            self._size[rows] = m * self._size[rows] + (1 - m) * sizes[dets]
            self._hits[rows] += 1
            self._misses[rows] = 0
            self._label[rows] = labels[dets]
            self._score[rows] = (
                c.score_momentum * self._score[rows] + (1 - c.score_momentum) * scores[dets]
            )
            self._state[rows[self._hits[rows] >= c.min_hits]] = CONFIRMED
            det_track_ids[dets] = self._ids[rows]
            for r, d in zip(rows.tolist(), dets.tolist(), strict=True):
                trail = self._trails[r]
                trail.append(centre_list[d])
                if len(trail) > c.trail_length:
                    del trail[0]
        missed = ~matched_rows
        self._misses[missed] += 1
        self._score[missed] *= c.score_momentum
        self._age += 1

        # Deaths: tentative and confirmed tracks have their own miss allowances.
        allowance = np.where(self._state == CONFIRMED, c.max_misses, c.tentative_max_misses)
        alive = self._misses <= allowance
        row_of_det = dict(zip(dets.tolist(), rows.tolist(), strict=True))
        if not alive.all():
            new_index = (np.cumsum(alive) - 1).tolist()
            alive_list = alive.tolist()
            row_of_det = {d: new_index[r] for d, r in row_of_det.items() if alive_list[r]}
            self._keep(alive)

        # Births from unmatched high-score detections.
        b = high[~det_used[high]]
        b = b[scores[b] >= c.birth_threshold]
        if b.size:
            k = b.size
            mean = np.zeros((k, 4))
            mean[:, :2] = centres[b]
            cov = np.zeros((k, 4, 4))
            cov[:, 0, 0] = cov[:, 1, 1] = c.measurement_std**2
            cov[:, 2, 2] = cov[:, 3, 3] = c.initial_velocity_std**2
            ids = np.arange(self._next_id, self._next_id + k)
            self._next_id += k
            start = self.num_tracks
            self._mean = np.concatenate([self._mean, mean])
            self._cov = np.concatenate([self._cov, cov])
            self._size = np.concatenate([self._size, sizes[b]])
            self._ids = np.concatenate([self._ids, ids])
            state = np.full(k, CONFIRMED if c.min_hits <= 1 else TENTATIVE, np.int64)
            self._state = np.concatenate([self._state, state])
            self._hits = np.concatenate([self._hits, np.ones(k, np.int64)])
            self._misses = np.concatenate([self._misses, np.zeros(k, np.int64)])
            self._age = np.concatenate([self._age, np.zeros(k, np.int64)])
            self._score = np.concatenate([self._score, (1 - c.score_momentum) * scores[b]])
            self._label = np.concatenate([self._label, labels[b]])
            for j, d in enumerate(b.tolist()):
                self._trails.append([centre_list[d]])
                row_of_det[d] = start + j
            det_track_ids[b] = ids

        self.detection_track_ids = det_track_ids
        self.detection_confirmed = np.zeros(n, bool)
        out: list[Track] = []
        for d, r in row_of_det.items():
            if self._state[r] != CONFIRMED:
                continue
            self.detection_confirmed[d] = True
            out.append(
                Track(
                    track_id=int(self._ids[r]),
                    box=boxes[d].copy(),
                    score=float(self._score[r]),
                    detection_score=float(scores[d]),
                    label=int(self._label[r]),
                    confirmed=True,
                    hits=int(self._hits[r]),
                    misses=0,
                    age=int(self._age[r]),
                    velocity=self._mean[r, 2:].copy(),
                    trail=np.asarray(self._trails[r], np.float64).reshape(-1, 2),
                    detection_index=d,
                )
            )
        out.sort(key=lambda t: t.track_id)
        return out

    def _keep(self, alive: np.ndarray) -> None:
        for name in (
            "_mean",
            "_cov",
            "_size",
            "_ids",
            "_state",
            "_hits",
            "_misses",
            "_age",
            "_score",
            "_label",
        ):
            setattr(self, name, getattr(self, name)[alive])
        self._trails = [t for t, a in zip(self._trails, alive, strict=True) if a]

    def predicted_boxes(self) -> tuple[np.ndarray, np.ndarray]:
        """Ids `[K]` and current boxes `[K, 4]` xyxy (filtered centre, smoothed size) of all
        live tracks, e.g. to draw coasting tracks."""
        half = self._size / 2.0
        boxes = np.concatenate([self._mean[:, :2] - half, self._mean[:, :2] + half], axis=1)
        return self._ids.copy(), boxes

    def __repr__(self) -> str:
        confirmed = int((self._state == CONFIRMED).sum())
        return (
            f"Tracker({confirmed} confirmed / {self.num_tracks} live tracks, "
            f"frame {self.frame_index})"
        )
