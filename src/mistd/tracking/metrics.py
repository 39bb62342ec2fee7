"""Track metrics: HOTA, CLEAR MOTA and IDF1 through TrackEval, and the Anti-UAV state accuracy.

TrackEval (Luiten et al., the MOT challenge's official code) computes HOTA / CLEAR / Identity
from per-frame id lists and similarity matrices; `trackeval_metrics` builds exactly the data
dict its `MotChallenge2DBox` dataset class builds (ids relabelled 0..n-1, box IoU as similarity)
and calls its metric classes, so the numbers are TrackEval's. TrackEval is an optional
dependency installed on its own, without its requirements (`TRACKEVAL_INSTALL`): every release
declares `opencv-python`, which would replace mistd's `opencv-python-headless` (and removing it
afterwards deletes OpenCV), while these metric classes need only numpy and scipy. Asked for without
it, `trackeval_metrics` and `evaluate_tracks` raise an `InputError` that says how to install it.

State accuracy (Anti-UAV challenge, single target; official `eval` of the Anti-UAV repository):
per frame, IoU of the predicted and true boxes when the target exists (0 if nothing is
predicted), and 1 / 0 when it does not exist and nothing / something is predicted; the mean over
frames.

Ground truth from a data set (`gt_tracks_from_dataset`): a frame's label boxes carry no identity
(drone_ir CSVs, UESTC/COCO indexes), so identities are derived: a sequence with at most one box
per frame is one target (id 1); otherwise boxes are linked frame to frame by minimum total centre
distance (Hungarian) among boxes of the same class, a link allowed within
`max(LINK_MIN_PX, LINK_SIZES * box size)` px of the identity's last box and at most `LINK_GAP`
frames after it; an unlinked box starts a new identity.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment

from mistd.boxes import box_iou_xyxy
from mistd.errors import InputError
from mistd.structures import FrameDataset

LINK_MIN_PX = 10.0
LINK_SIZES = 3.0
LINK_GAP = 10
SUMMARY_KEYS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "CLR_FP", "CLR_FN")


# The one way to install TrackEval (see the module docstring for why without its requirements).
TRACKEVAL_INSTALL = 'pip install --no-deps "trackeval==1.3.0"'
TRACKEVAL_MISSING = (
    "HOTA / MOTA / IDF1 need TrackEval, which is not installed: "
    f"{TRACKEVAL_INSTALL} (--no-deps keeps mistd's headless OpenCV; "
    "`mistd track --no-track-metrics` tracks without scoring)"
)


def _import_trackeval():
    """`import trackeval`, its import-time chatter silenced (it prints a line to stdout when an
    optional requirement of a data set class it imports, and mistd never uses, is missing)."""
    with contextlib.redirect_stdout(io.StringIO()):
        import trackeval
    return trackeval


def trackeval_available() -> bool:
    """Whether TrackEval imports."""
    try:
        _import_trackeval()
    except ImportError:
        return False
    return True


def require_trackeval():
    """The `trackeval` module; an `InputError` saying how to install it when it is missing."""
    try:
        return _import_trackeval()
    except ImportError:
        raise InputError(TRACKEVAL_MISSING) from None


def _xyxy(rows: np.ndarray) -> np.ndarray:
    return np.concatenate([rows[:, 2:4], rows[:, 2:4] + rows[:, 4:6]], axis=1)


def trackeval_data(gt: np.ndarray, tracks: np.ndarray, num_frames: int) -> dict:
    """TrackEval's per-sequence data dict from `[N, 7]` ground-truth and track rows (frames
    1..num_frames): ids relabelled to 0..n-1, IoU similarity per frame, as
    `MotChallenge2DBox.get_preprocessed_seq_data` makes it for one class without distractors."""
    gt_ids_all = np.unique(gt[:, 1]).astype(int) if len(gt) else np.zeros(0, int)
    tr_ids_all = np.unique(tracks[:, 1]).astype(int) if len(tracks) else np.zeros(0, int)
    gt_map = {v: i for i, v in enumerate(gt_ids_all)}
    tr_map = {v: i for i, v in enumerate(tr_ids_all)}
    data: dict = {"gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    gt_frames = gt[:, 0].astype(int)
    tr_frames = tracks[:, 0].astype(int)
    for t in range(1, num_frames + 1):
        g = gt[gt_frames == t]
        r = tracks[tr_frames == t]
        data["gt_ids"].append(np.array([gt_map[int(i)] for i in g[:, 1]], int))
        data["tracker_ids"].append(np.array([tr_map[int(i)] for i in r[:, 1]], int))
        data["similarity_scores"].append(box_iou_xyxy(_xyxy(g), _xyxy(r)))
    data.update(
        num_timesteps=num_frames,
        num_gt_ids=len(gt_ids_all),
        num_tracker_ids=len(tr_ids_all),
        num_gt_dets=len(gt),
        num_tracker_dets=len(tracks),
        seq="",
    )
    return data


def trackeval_metrics(
    gt: Mapping[str, np.ndarray],
    tracks: Mapping[str, np.ndarray],
    num_frames: Mapping[str, int],
) -> dict[str, dict[str, float]]:
    """HOTA, CLEAR and Identity metrics per sequence and combined (key "all").

    Args:
        gt, tracks: sequence -> `[N, 7]` rows (a sequence missing from `tracks` has no tracks).
        num_frames: sequence -> number of frames.
    Returns:
        {sequence or "all": {"HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDSW",
        "CLR_FP", "CLR_FN", "MT", "ML", ...}} with HOTA family values at the mean over
        TrackEval's alpha thresholds (as its summary reports), fractions in [0, 1].
    """
    trackeval = require_trackeval()
    metrics = [
        trackeval.metrics.HOTA({"PRINT_CONFIG": False}),
        trackeval.metrics.CLEAR({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
        trackeval.metrics.Identity({"THRESHOLD": 0.5, "PRINT_CONFIG": False}),
    ]
    unknown = sorted(set(tracks) - set(gt))
    if unknown:
        raise InputError(
            f"tracks for sequences without ground truth: {unknown[:5]} "
            f"(ground-truth sequences: {sorted(gt)[:5]}{' ...' if len(gt) > 5 else ''})"
        )
    per_metric: list[dict[str, dict]] = [{} for _ in metrics]
    for seq, gt_rows in gt.items():
        data = trackeval_data(
            np.asarray(gt_rows).reshape(-1, 7),
            np.asarray(tracks.get(seq, np.zeros((0, 7)))).reshape(-1, 7),
            int(num_frames[seq]),
        )
        for store, metric in zip(per_metric, metrics, strict=True):
            store[seq] = metric.eval_sequence(data)
    combined = [
        metric.combine_sequences(store) for metric, store in zip(metrics, per_metric, strict=True)
    ]
    out: dict[str, dict[str, float]] = {}
    for seq in [*gt, "all"]:
        results = (
            combined if seq == "all" else [store[seq] for store in per_metric]
        )  # one dict per metric class
        row: dict[str, float] = {}
        for res in results:
            for key, value in res.items():
                value = np.asarray(value)
                row[key] = float(value.mean()) if value.ndim else float(value)
        out[seq] = row
    return out


# --------------------------------------------------------------------------- Anti-UAV


def state_accuracy(gt_boxes: list[np.ndarray | None], pred_boxes: list[np.ndarray | None]) -> float:
    """Anti-UAV state accuracy of one single-target sequence.

    Args:
        gt_boxes: per frame, the target's `[4]` xyxy box, or None when it does not exist.
        pred_boxes: per frame, the predicted `[4]` xyxy box, or None for "no target".
    Returns:
        mean over frames of IoU (target exists; 0 if nothing predicted) or of 1/0 (target absent
        and nothing / something predicted).
    """
    if len(gt_boxes) != len(pred_boxes):
        raise ValueError(f"{len(gt_boxes)} ground-truth frames but {len(pred_boxes)} predictions")
    if not gt_boxes:
        return 0.0
    per_frame = []
    for g, p in zip(gt_boxes, pred_boxes, strict=True):
        if g is None:
            per_frame.append(1.0 if p is None else 0.0)
        elif p is None:
            per_frame.append(0.0)
        else:
            per_frame.append(float(box_iou_xyxy(g, p)[0, 0]))
    return float(np.mean(per_frame))


def single_target_prediction(tracks: np.ndarray, num_frames: int) -> list[np.ndarray | None]:
    """Per frame, the box (xyxy) of the highest-scoring track in it, or None: how a
    multi-target track file answers a single-target benchmark."""
    out: list[np.ndarray | None] = [None] * num_frames
    best = np.full(num_frames, -np.inf)
    for row in np.asarray(tracks).reshape(-1, 7):
        t = int(row[0]) - 1
        if 0 <= t < num_frames and row[6] > best[t]:
            best[t] = row[6]
            out[t] = _xyxy(row[None])[0]
    return out


def state_accuracies(
    gt: Mapping[str, np.ndarray], tracks: Mapping[str, np.ndarray], num_frames: Mapping[str, int]
) -> dict[str, float]:
    """State accuracy of every single-target sequence of `gt` (at most one box per frame), and
    their frame-weighted mean under "all" (absent when no sequence is single-target)."""
    out: dict[str, float] = {}
    total, frames = 0.0, 0
    for seq, rows in gt.items():
        rows = np.asarray(rows).reshape(-1, 7)
        n = int(num_frames[seq])
        if len(np.unique(rows[:, 0])) != len(rows):
            continue  # several targets in a frame: not a single-target sequence
        gt_boxes = single_target_prediction(rows, n)
        pred = single_target_prediction(np.asarray(tracks.get(seq, np.zeros((0, 7)))), n)
        out[seq] = state_accuracy(gt_boxes, pred)
        total += out[seq] * n
        frames += n
    if frames:
        out["all"] = total / frames
    return out


# --------------------------------------------------------------------------- ground truth


def link_identities(boxes: list[np.ndarray], labels: list[np.ndarray]) -> list[np.ndarray]:
    """Identities of per-frame label boxes (see the module docstring).

    Args:
        boxes: per frame, `[N_t, 4]` xyxy.
        labels: per frame, `[N_t]` class ids.
    Returns:
        per frame, `[N_t]` int ids starting at 1.
    """
    if all(len(b) <= 1 for b in boxes):
        return [np.ones(len(b), np.int64) for b in boxes]
    last_box: dict[int, np.ndarray] = {}
    last_label: dict[int, int] = {}
    last_frame: dict[int, int] = {}
    next_id = 1
    out = []
    for t, (frame_boxes, frame_labels) in enumerate(zip(boxes, labels, strict=True)):
        frame_boxes = np.asarray(frame_boxes, np.float64).reshape(-1, 4)
        ids = np.zeros(len(frame_boxes), np.int64)
        live = [i for i in last_frame if t - last_frame[i] <= LINK_GAP]
        if live and len(frame_boxes):
            prev = np.stack([last_box[i] for i in live])
            c_prev = (prev[:, :2] + prev[:, 2:]) / 2
            c_now = (frame_boxes[:, :2] + frame_boxes[:, 2:]) / 2
            dist = np.sqrt(((c_prev[:, None] - c_now[None]) ** 2).sum(-1))
            size = np.maximum(prev[:, 2:] - prev[:, :2], 0).max(1)
            reach = np.maximum(LINK_MIN_PX, LINK_SIZES * size)[:, None]
            same_class = np.array([last_label[i] for i in live])[:, None] == np.asarray(
                frame_labels
            ).reshape(1, -1)
            allowed = (dist <= reach) & same_class
            r, c = linear_sum_assignment(np.where(allowed, dist, 1e9))
            for i, j in zip(r, c, strict=True):
                if allowed[i, j]:
                    ids[j] = live[i]
        for j in range(len(frame_boxes)):
            if ids[j] == 0:
                ids[j] = next_id
                next_id += 1
            last_box[int(ids[j])] = frame_boxes[j]
            last_label[int(ids[j])] = int(np.asarray(frame_labels).reshape(-1)[j])
            last_frame[int(ids[j])] = t
        out.append(ids)
    return out


def gt_tracks_from_dataset(dataset: FrameDataset) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Ground-truth track rows (score 1) and frame counts of every sequence of `dataset`."""
    gt: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for seq in dataset.sequences:
        boxes = [r.boxes for r in seq.frames]
        labels = [r.labels for r in seq.frames]
        ids = link_identities(boxes, labels)
        rows = []
        for t, (b, i) in enumerate(zip(boxes, ids, strict=True)):
            for (x1, y1, x2, y2), track_id in zip(np.asarray(b).reshape(-1, 4), i, strict=True):
                rows.append([t + 1, track_id, x1, y1, x2 - x1, y2 - y1, 1.0])
        gt[seq.name] = np.asarray(rows, np.float64).reshape(-1, 7)
        counts[seq.name] = len(seq.frames)
    return gt, counts


def evaluate_tracks(
    gt: Mapping[str, np.ndarray],
    tracks: Mapping[str, np.ndarray],
    num_frames: Mapping[str, int],
    trackeval: bool = True,
) -> dict:
    """All track metrics: `{"trackeval": {...} or None, "state_accuracy": {...}}`.

    With `trackeval` (the default) HOTA / CLEAR / Identity come from TrackEval, and its absence is
    an `InputError` (never a silent gap); `trackeval=False` computes the state accuracy only.
    """
    te = trackeval_metrics(gt, tracks, num_frames) if trackeval else None
    return {"trackeval": te, "state_accuracy": state_accuracies(gt, tracks, num_frames)}
