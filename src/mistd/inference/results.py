"""`Results`: the detections of one frame, in numpy, with what a user does with them.

    results = predictor(frame)[0]              # or: for results in predictor("video.mp4")
    results.boxes, results.scores, results.labels   # [N, 4] xyxy original pixels, [N], [N]
    strong = results[results.scores > 0.5]    # boolean mask, index array or slice -> Results
    results.plot()                             # BGR uint8 image with the boxes drawn
    results.save("frame.png"); results.to_json(); results.to_supervision()

Frames: one rule everywhere. A frame's position (`Results.frame_index`, `FrameRecord.index`, any
field named `*index`) is 0-based, as list indices are; a frame NUMBER (a `frame` column or field,
a file name) is 1-based: detections.csv, `to_json`, tracks.json, MOT files (as their format
defines), map panel PNGs.

No torch here: results of an onnxruntime detector never import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np


def _empty_boxes() -> np.ndarray:
    return np.zeros((0, 4), np.float32)


def _empty_scores() -> np.ndarray:
    return np.zeros((0,), np.float32)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), np.int64)


@dataclass
class Results:
    """Detections of one frame.

    Attributes:
        boxes: `[N, 4]` float32 xyxy in the frame's original pixels.
        scores: `[N]` float32 in [0, 1].
        labels: `[N]` int64 0-based class ids (index `names`).
        names: class names of the detector (`names[label]`).
        frame: the frame the detections are of (`[H, W]` uint8/uint16 or `[H, W, 3]` BGR), kept
            for `plot` (None when not kept).
        frame_index: 0-based index of the frame in its sequence / video.
        sequence: name of the sequence (video file stem, folder, data set sequence).
        path: the image or video file the frame came from, when any.
        display_threshold: `plot` draws boxes with scores at least this.
        maps: a learned model's intermediate maps at model resolution (CHAL with `maps=True`),
            each a torch tensor; `letterbox` maps them to the frame.
        letterbox: how the frame was fitted to the model input (`LetterboxInfo`), or None.
        record: the data set's `FrameRecord` of the frame (its ground truth), when the source is
            a data set, video or folder; else None.
        extra: what post-processing stages add (e.g. `tracks`: the confirmed tracks, `raw`: the
            detections before track confirmation).
    """

    boxes: np.ndarray = field(default_factory=_empty_boxes)
    scores: np.ndarray = field(default_factory=_empty_scores)
    labels: np.ndarray = field(default_factory=_empty_labels)
    names: list[str] = field(default_factory=lambda: ["target"])
    frame: np.ndarray | None = None
    frame_index: int = 0
    sequence: str = ""
    path: str | None = None
    display_threshold: float = 0.0
    maps: dict[str, Any] | None = None
    letterbox: Any = None
    record: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(
                f"boxes, scores and labels differ in length: {len(self.boxes)}, "
                f"{len(self.scores)}, {len(self.labels)}"
            )

    # ----------------------------------------------------------------------------- container
    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def __getitem__(self, index) -> Results:
        """The detections selected by a boolean mask, an index array, an int or a slice."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        return replace(
            self,
            boxes=self.boxes[index],
            scores=self.scores[index],
            labels=self.labels[index],
            extra=dict(self.extra),
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    @property
    def class_names(self) -> list[str]:
        """The name of each detection's class."""
        return [self.names[c] if 0 <= c < len(self.names) else str(c) for c in self.labels]

    @property
    def orig_shape(self) -> tuple[int, int] | None:
        """`(H, W)` of the frame, when kept."""
        return None if self.frame is None else tuple(self.frame.shape[:2])

    def above(self, threshold: float | None = None) -> Results:
        """The detections with `score >= threshold` (default: `display_threshold`)."""
        threshold = self.display_threshold if threshold is None else threshold
        return self[self.scores >= threshold]

    # ----------------------------------------------------------------------------- outputs
    def plot(
        self, threshold: float | None = None, gt_boxes: np.ndarray | None = None
    ) -> np.ndarray:
        """The frame as a BGR uint8 image with the boxes (score >= `threshold`, default
        `display_threshold`) drawn in green with class and score; `gt_boxes` in magenta."""
        from mistd.viz.overlay import overlay

        if self.frame is None:
            raise ValueError("these results keep no frame to draw on (Predictor(keep_frames=...))")
        threshold = self.display_threshold if threshold is None else threshold
        return overlay(
            self.frame,
            self.boxes,
            self.scores,
            gt_boxes,
            display_threshold=threshold,
            labels=self.labels,
            class_names=self.names,
        )

    def save(self, path: str | Path, threshold: float | None = None) -> Path:
        """Write `plot()` to an image file (atomically); returns the path."""
        import cv2

        from mistd.io import atomic_path

        path = Path(path)
        image = self.plot(threshold)
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise ValueError(f"cannot write an image to {path} (unknown extension?)")
        return path

    def to_list(self) -> list[dict]:
        """One dict per detection: `box` [x1, y1, x2, y2], `score`, `label`, `name`, `frame`
        (the frame NUMBER, 1-based, as in every file mistd writes)."""
        return [
            {
                "frame": int(self.frame_index) + 1,
                "box": [round(float(v), 2) for v in box],
                "score": round(float(score), 4),
                "label": int(label),
                "name": name,
            }
            for box, score, label, name in zip(
                self.boxes, self.scores, self.labels, self.class_names, strict=True
            )
        ]

    def to_json(self) -> str:
        """`to_list()` as a JSON string."""
        import json

        return json.dumps(self.to_list())

    def to_coco(self, image_id: int, category_offset: int = 1) -> list[dict]:
        """COCO result entries (`bbox` as xywh, `category_id` = label + offset), as
        `mistd.structures.Detections.to_coco` (what `COCOEvaluator.process` takes)."""
        return [
            {
                "image_id": int(image_id),
                "category_id": int(label) + category_offset,
                "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                "score": float(score),
            }
            for (x1, y1, x2, y2), score, label in zip(
                self.boxes, self.scores, self.labels, strict=True
            )
        ]

    def to_detections(self):
        """The torch `mistd.structures.Detections` of these boxes (what the evaluators take)."""
        from mistd.structures import Detections

        detections = Detections.from_numpy(self.boxes, self.scores, self.labels)
        detections.maps = self.maps
        return detections

    def to_supervision(self):
        """A `supervision.Detections` (xyxy, confidence, class_id, data["class_name"]).

        Needs the `supervision` package (not a dependency of mistd)."""
        try:
            import supervision as sv
        except ImportError:
            raise ImportError(
                "Results.to_supervision needs the supervision package (pip install supervision)"
            ) from None
        return sv.Detections(
            xyxy=self.boxes.astype(np.float32),
            confidence=self.scores.astype(np.float32),
            class_id=self.labels.astype(int),
            data={"class_name": np.asarray(self.class_names)},
        )

    def __repr__(self) -> str:
        shape = "" if self.frame is None else f", frame {self.frame.shape[1]}x{self.frame.shape[0]}"
        return (
            f"Results({len(self)} detections, frame_index={self.frame_index}, "
            f"sequence={self.sequence!r}{shape})"
        )
