"""Containers shared by every module: frame records, sequences, data sets, clips, detections.

Conventions (docs/design.md §2): boxes are `xyxy` float pixels in the original image; class ids are
0-based; a clip holds T frames with the key frame LAST; only the key frame is labelled/predicted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where detections are made (never by readers)
    import torch


def empty_boxes() -> np.ndarray:
    """An empty `[0, 4]` float32 box array."""
    return np.zeros((0, 4), dtype=np.float32)


def empty_labels() -> np.ndarray:
    """An empty `[0]` int64 label array."""
    return np.zeros((0,), dtype=np.int64)


@dataclass
class FrameRecord:
    """One annotated frame of a sequence.

    Attributes:
        sequence: name of the sequence the frame belongs to.
        index: 0-based position of the frame in its sequence (after sorting by frame number).
        path: image file, or None when the frame lives inside a video file.
        video: video file holding the frame (frame number `index`), or None for image files.
        boxes: `[N, 4]` float32 xyxy in original pixels.
        labels: `[N]` int64, 0-based class ids.
        width, height: frame size in pixels when known from the annotation (None if unknown).
        image_id: COCO image id when the record came from (or will go to) a COCO json.
        mask: binary target mask file for mask data sets (Pd/Fa evaluation), or None.
    """

    sequence: str
    index: int
    path: Path | None = None
    video: Path | None = None
    boxes: np.ndarray = field(default_factory=empty_boxes)
    labels: np.ndarray = field(default_factory=empty_labels)
    width: int | None = None
    height: int | None = None
    image_id: int | None = None
    mask: Path | None = None

    @property
    def num_targets(self) -> int:
        return int(self.boxes.shape[0])


@dataclass
class Sequence:
    """An ordered list of frames from one video / one folder.

    `attributes` holds per-sequence facts a data set records (e.g. `distance_bin`, `split`);
    evaluation reports a row per value of each.
    """

    name: str
    frames: list[FrameRecord]
    attributes: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)


@dataclass
class FrameDataset:
    """A data set as a list of sequences (the in-memory form every reader returns).

    Attributes:
        sequences: sequences in a stable order.
        class_names: class names indexed by 0-based label.
        source: the file or folder the data set was read from.
        format: reader that produced it (`uestc`, `coco`, `masks`, `anti-uav`, `video`, `images`).
    """

    sequences: list[Sequence]
    class_names: list[str] = field(default_factory=lambda: ["target"])
    source: str = ""
    format: str = ""

    def frames(self) -> Iterator[FrameRecord]:
        """All frames, sequence by sequence, in order."""
        for seq in self.sequences:
            yield from seq.frames

    @property
    def num_frames(self) -> int:
        return sum(len(s) for s in self.sequences)


@dataclass
class Clip:
    """T consecutive frames of one sequence, key frame last (docs/design.md §2).

    Attributes:
        frames: `[T, H, W]` uint8 or uint16 raw frames, oldest first, key frame at index T-1.
        bit_depth: 8 or 16.
        key: the key frame's record (its boxes/labels are the clip's targets).
        frame_indices: the T source indices used (earliest repeated at a sequence start).
    """

    frames: np.ndarray
    bit_depth: int
    key: FrameRecord
    frame_indices: list[int]


@dataclass
class Detections:
    """Detections for one key frame.

    Attributes:
        boxes: `[N, 4]` float32 xyxy in original-image pixels.
        scores: `[N]` float32 in [0, 1].
        labels: `[N]` int64 0-based class ids.
        maps: optional named intermediate maps (e.g. CHAL's `background`, `anomaly`, `gate`),
            each `[h, w]` or `[C, h, w]` float tensors at model resolution.
    """

    boxes: torch.Tensor
    scores: torch.Tensor
    labels: torch.Tensor
    maps: dict[str, torch.Tensor] | None = None

    @classmethod
    def empty(cls, device: torch.device | str = "cpu") -> Detections:
        import torch

        return cls(
            boxes=torch.zeros((0, 4), device=device),
            scores=torch.zeros((0,), device=device),
            labels=torch.zeros((0,), dtype=torch.int64, device=device),
        )

    @classmethod
    def from_numpy(cls, boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray | None = None):
        import torch

        boxes_t = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        scores_t = torch.as_tensor(np.asarray(scores, dtype=np.float32).reshape(-1))
        if labels is None:
            labels_t = torch.zeros(scores_t.shape[0], dtype=torch.int64)
        else:
            labels_t = torch.as_tensor(np.asarray(labels, dtype=np.int64).reshape(-1))
        return cls(boxes_t, scores_t, labels_t)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    def to(self, device: torch.device | str) -> Detections:
        maps = None if self.maps is None else {k: v.to(device) for k, v in self.maps.items()}
        return Detections(
            self.boxes.to(device), self.scores.to(device), self.labels.to(device), maps
        )

    def to_coco(self, image_id: int, category_offset: int = 1) -> list[dict]:
        """COCO result entries (`bbox` as xywh, `category_id` = label + offset)."""
        boxes = self.boxes.detach().float().cpu().numpy()
        scores = self.scores.detach().float().cpu().numpy()
        labels = self.labels.detach().cpu().numpy()
        out = []
        for (x1, y1, x2, y2), s, c in zip(boxes, scores, labels, strict=True):
            out.append(
                {
                    "image_id": int(image_id),
                    "category_id": int(c) + category_offset,
                    "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                    "score": float(s),
                }
            )
        return out
