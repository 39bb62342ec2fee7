"""Clips: T consecutive frames of one sequence, key frame last (docs/design.md §2).

`ClipSampler` turns a `FrameDataset` into one clip per frame (the i-th frame of the data set is the
i-th clip's key frame). At a sequence start the earliest frame is repeated, as the official CHAL
loader does (`max(k - t, 0)`): key k=2, T=5 -> frames [0, 0, 0, 1, 2]. Clips never mix sequences.
`ClipTrainingSet` adds the model-input transform and the key frame's targets for training.
`causal_window` is that rule on its own, for frames held in memory. A model may take every
`frame_stride`-th frame instead of consecutive ones (`model.frame_stride`, for footage where targets
move little between frames): key k=9, T=3, stride 4 -> frames [1, 5, 9]; the window then spans
`window_span(T, stride)` frames, and the same clamping at 0 applies.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch

from mistd.data.readers.frames import load_frame
from mistd.data.transforms import to_model_input
from mistd.errors import InputError
from mistd.structures import Clip, FrameDataset, FrameRecord


def causal_window(key: int, num_frames: int, frame_stride: int = 1) -> list[int]:
    """Positions of the `num_frames` frames of the clip whose key frame is at `key`, oldest first,
    `frame_stride` apart (the earliest frame repeated at a sequence start):
    `causal_window(2, 5) == [0, 0, 0, 1, 2]`, `causal_window(5, 3, 4) == [0, 1, 5]`."""
    return [max(key - (num_frames - 1 - t) * frame_stride, 0) for t in range(num_frames)]


def window_span(num_frames: int, frame_stride: int = 1) -> int:
    """Frames from the oldest frame of a full window to its key frame, both included."""
    return (num_frames - 1) * frame_stride + 1


def frame_stride_of(detector: object) -> int:
    """A detector's `frame_stride` (1 for detectors that do not define one)."""
    stride = int(getattr(detector, "frame_stride", 1))
    if stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {stride}")
    return stride


class ClipSampler:
    """Random access to the clips of a data set.

    Args:
        dataset: the frames (image- or video-backed records).
        num_frames: T, frames per clip (1 for single-frame detectors).
        cache_size: decoded frames kept in an LRU cache (default twice the window span), so
            that consecutive clips, which share frames, read each frame once.
        decoded_cache: read video frames from the on-disk decoded-frame cache
            (`mistd.data.frame_cache`), for random access (training).
        frame_stride: frames between consecutive clip frames (see `causal_window`).
    """

    def __init__(
        self,
        dataset: FrameDataset,
        num_frames: int = 5,
        cache_size: int | None = None,
        decoded_cache: bool = False,
        frame_stride: int = 1,
    ):
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        if frame_stride < 1:
            raise ValueError(f"frame_stride must be >= 1, got {frame_stride}")
        self.dataset = dataset
        self.num_frames = int(num_frames)
        self.frame_stride = int(frame_stride)
        span = window_span(self.num_frames, self.frame_stride)
        self.cache_size = 2 * span if cache_size is None else int(cache_size)
        self.decoded_cache = decoded_cache
        self._index = [
            (s, p) for s, seq in enumerate(dataset.sequences) for p in range(len(seq.frames))
        ]
        self._cache: OrderedDict[tuple[int, int], tuple[np.ndarray, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._index)

    def record(self, i: int) -> FrameRecord:
        """The key frame record of clip `i`."""
        s, p = self._index[i]
        return self.dataset.sequences[s].frames[p]

    def positions(self, i: int) -> tuple[int, list[int]]:
        """(sequence number, the T frame positions of clip `i` in that sequence, oldest first)."""
        s, p = self._index[i]
        return s, causal_window(p, self.num_frames, self.frame_stride)

    def _frame(self, s: int, p: int) -> tuple[np.ndarray, int]:
        key = (s, p)
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        value = load_frame(self.dataset.sequences[s].frames[p], self.decoded_cache)
        if self.cache_size > 0:
            self._cache[key] = value
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return value

    def __getitem__(self, i: int) -> Clip:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"clip {i} out of range (data set has {len(self)} frames)")
        s, positions = self.positions(i)
        frames = self.dataset.sequences[s].frames
        loaded = [self._frame(s, p) for p in positions]
        key_image, bit_depth = loaded[-1]
        for p, (image, depth) in zip(positions, loaded, strict=True):
            source = frames[p].path or frames[p].video
            if image.shape != key_image.shape:
                raise InputError(
                    f"frame size {image.shape[1]}x{image.shape[0]} differs from "
                    f"{key_image.shape[1]}x{key_image.shape[0]} of the key frame in sequence "
                    f"'{frames[p].sequence}'",
                    path=source,
                )
            if depth != bit_depth:
                raise InputError(
                    f"{depth}-bit frame in a {bit_depth}-bit sequence '{frames[p].sequence}'",
                    path=source,
                )
        return Clip(
            frames=np.stack([image for image, _ in loaded]),
            bit_depth=bit_depth,
            key=frames[positions[-1]],
            frame_indices=[frames[p].index for p in positions],
        )


def targets_in_input(
    record: FrameRecord, letterbox_info, min_box_size: float = 0.0
) -> torch.Tensor:
    """The key frame's targets `[N, 5]` float32 `(cls, cx, cy, w, h)` in input pixels.

    Boxes are clipped to the input; boxes whose clipped width or height is not above
    `min_box_size` are dropped (the official loader uses 1 px; the default 0 keeps every target).
    """
    if record.num_targets == 0:
        return torch.zeros((0, 5), dtype=torch.float32)
    boxes = letterbox_info.boxes_to_input(record.boxes.astype(np.float32))
    h, w = letterbox_info.input_size
    boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
    boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    keep = (bw > min_box_size) & (bh > min_box_size)
    out = np.stack(
        [
            record.labels.astype(np.float32),
            (boxes[:, 0] + boxes[:, 2]) / 2,
            (boxes[:, 1] + boxes[:, 3]) / 2,
            bw,
            bh,
        ],
        axis=1,
    )[keep]
    return torch.from_numpy(np.ascontiguousarray(out, dtype=np.float32))


class ClipTrainingSet(torch.utils.data.Dataset):
    """Clips as model input, with the key frame's targets.

    Item `i` -> `(clip [T, 3, h, w] float32, targets [N, 5] float32 (cls, cx, cy, w, h) in input
    pixels, meta)`; meta = {"clip_index", "image_id", "sequence", "index", "letterbox" (plain dict,
    see `LetterboxInfo.to_dict`), "original_size" (H, W)}.

    Args:
        dataset: the frames.
        num_frames: T.
        input_size: `(h, w)` model input size or an int.
        min_box_size: see `targets_in_input`.
        decoded_cache: read video frames from the decoded-frame cache (see `ClipSampler`).
        frame_stride: frames between consecutive clip frames (see `causal_window`).
    """

    def __init__(
        self,
        dataset: FrameDataset,
        num_frames: int = 5,
        input_size: int | tuple[int, int] = 512,
        min_box_size: float = 0.0,
        decoded_cache: bool = False,
        frame_stride: int = 1,
    ):
        self.sampler = ClipSampler(
            dataset, num_frames, decoded_cache=decoded_cache, frame_stride=frame_stride
        )
        self.input_size = input_size
        self.min_box_size = min_box_size

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        clip = self.sampler[i]
        x, info = to_model_input(clip.frames, clip.bit_depth, self.input_size)
        targets = targets_in_input(clip.key, info, self.min_box_size)
        meta = {
            "clip_index": i,
            "image_id": clip.key.image_id,
            "sequence": clip.key.sequence,
            "index": clip.key.index,
            "letterbox": info.to_dict(),
            "original_size": tuple(clip.frames.shape[1:]),
        }
        return x, targets, meta


def collate_clips(
    batch: list[tuple[torch.Tensor, torch.Tensor, dict]],
) -> tuple[torch.Tensor, list[torch.Tensor], list[dict]]:
    """`(clips [B, T, 3, h, w], [targets [N_b, 5]] * B, [meta] * B)`."""
    clips = torch.stack([item[0] for item in batch])
    return clips, [item[1] for item in batch], [item[2] for item in batch]
