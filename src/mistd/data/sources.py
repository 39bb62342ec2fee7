"""Training on several data sets at once: per-source weights, scales and native-scale crops.

A generalist detector has to see the cameras and target sizes it will meet: the thermal drone
clips (8-32 px targets over sky), the same clips shrunk 2-4x (2-8 px targets with real motion and
clutter), SIRST-V2 single frames from many sensors (2-14 px, ground and sea clutter), DAUB, and
synthetic tiny targets over real backgrounds. `data.sources` lists them (a YAML `--cfg` file):

    data:
      sources:
        - {name: drone_ir, path: drone_ir, select: train, weight: 0.4}
        - {name: drone_ir_small, path: drone_ir, select: train, weight: 0.2, scale: [2.0, 4.0]}
        - {name: sirst_v2, path: sirst_v2, select: train, weight: 0.4,
           val: sirst_v2, val_select: val}

Every training item draws a source by weight, a frame of it uniformly, a downscale factor from
its `scale` range, and a window of the model's input size at the frames' own pixel scale (the
models are fully convolutional and learn targets in pixels, not in fractions of a frame): with
probability `target_crop` the window is placed so it holds a random target, otherwise anywhere;
frames smaller than the window are padded with the letterbox grey. Single frames (SIRST-V2) give
static clips to multi-frame models (the frame repeated T times, as a sequence start does): the
clip then shows no motion, which is the truth for a still frame, and the model learns to detect
from appearance when there is none. The draw is a function of (seed, epoch, item index) only,
so a resumed run sees the same items.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from mistd.data.clips import ClipSampler
from mistd.data.transforms import PAD_VALUE, LetterboxInfo, normalize
from mistd.errors import InputError
from mistd.structures import FrameDataset


@dataclass
class SourceConfig:
    """One training source of `data.sources`.

    Attributes:
        name: row name in logs and per-source validation (default: the path's name).
        path, root, format, select: as `read_dataset` (`select`: a split or sequence names).
        weight: relative sampling weight (items drawn from this source / all items).
        scale: `[min, max]` downscale factor drawn per item (`[2, 4]`: frames shrunk 2-4x, so
            8-32 px targets become 2-16 px); `[1, 1]` keeps the frames' own scale.
        val, val_select: this source's validation data (empty = no validation row).
        painted: `[min, max]` synthetic targets painted into each window (`paint_targets`:
            2-5 px Gaussian blobs at a random contrast against the window's own clutter, moving
            across a clip's frames); `[0, 0]` = none. Real frames then carry tiny targets of
            known position over real sky, cloud, ground and sea.
    """

    name: str = ""
    path: str = ""
    root: str = ""
    format: str = "auto"
    select: str = ""
    weight: float = 1.0
    scale: tuple[float, float] = (1.0, 1.0)
    val: str = ""
    val_select: str = ""
    painted: tuple[int, int] = (0, 0)

    def label(self) -> str:
        from pathlib import Path

        return self.name or Path(self.path).name


def check_sources(sources: list[SourceConfig], need_paths: bool = True) -> None:
    """Raise InputError naming the field of the first invalid source (`need_paths`: a source
    read from disk must name its data)."""
    names = [s.label() for s in sources]
    for i, s in enumerate(sources):
        where = f"data.sources[{i}] ({names[i]})"
        if need_paths and not s.path:
            raise InputError(f"{where}: path is empty")
        if not s.weight > 0:
            raise InputError(f"{where}: weight must be > 0, got {s.weight}")
        low, high = s.scale
        if not 1.0 <= low <= high:
            raise InputError(f"{where}: scale must be [min, max], 1 <= min <= max, got {s.scale}")
    for i, s in enumerate(sources):
        if not 0 <= s.painted[0] <= s.painted[1]:
            raise InputError(
                f"data.sources[{i}] ({names[i]}): painted must be [min, max], 0 <= min <= max, "
                f"got {s.painted}"
            )
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise InputError(f"data.sources: names must differ (give `name:`), repeated: {duplicates}")


def grow_boxes(boxes: np.ndarray, min_size: float) -> np.ndarray:
    """xyxy boxes `[N, 4]` with each side grown to at least `min_size` about its centre."""
    if min_size <= 0 or len(boxes) == 0:
        return boxes
    out = boxes.astype(np.float32).copy()
    for lo, hi in ((0, 2), (1, 3)):
        centre = (out[:, lo] + out[:, hi]) / 2
        half = np.maximum(out[:, hi] - out[:, lo], min_size) / 2
        out[:, lo], out[:, hi] = centre - half, centre + half
    return out


class MultiSourceTrainingSet(torch.utils.data.Dataset):
    """Items drawn from several data sets (see the module docstring).

    Item `i` -> `(clip [T, 3, h, w] float32, targets [N, 5] (cls, cx, cy, w, h) in input pixels,
    meta)`, as `ClipTrainingSet`; meta adds `"source"`.

    Args:
        sources: `(SourceConfig, FrameDataset)` pairs (one class list shared by all).
        num_frames: T.
        input_size: `(h, w)` of the training window.
        length: number of items (the sampler's epoch); each index is a different draw.
        seed: the draw of item i depends on (seed, epoch, i) only.
        target_crop: probability that the window holds a target (when the frame has one).
        min_box: training boxes are grown to at least this many pixels per side (0 = as
            annotated).
        flip: random horizontal flips.
        overlay: probability of drawing a burned-in overlay (text, digits, a crosshair) into a
            window, identical in every frame and never a target (`draw_overlay`): cameras stamp
            them on their video, and they are small, bright and sharp like a target.
        decoded_cache, frame_stride: as `ClipSampler`.
    """

    def __init__(
        self,
        sources: list[tuple[SourceConfig, FrameDataset]],
        num_frames: int,
        input_size: tuple[int, int],
        *,
        length: int = 1_000_000,
        seed: int = 0,
        target_crop: float = 0.8,
        min_box: float = 0.0,
        flip: bool = True,
        overlay: float = 0.0,
        decoded_cache: bool = False,
        frame_stride: int = 1,
    ):
        if not sources:
            raise InputError("data.sources is empty")
        check_sources([s for s, _ in sources], need_paths=False)
        empty = [s.label() for s, d in sources if not any(True for _ in d.frames())]
        if empty:
            raise InputError(f"data.sources: no frames in {', '.join(empty)}")
        self.configs = [s for s, _ in sources]
        self.samplers = [
            ClipSampler(d, num_frames, decoded_cache=decoded_cache, frame_stride=frame_stride)
            for _, d in sources
        ]
        weights = np.asarray([s.weight for s in self.configs], np.float64)
        self.probabilities = weights / weights.sum()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.length = int(length)
        self.seed = int(seed)
        self.target_crop = float(target_crop)
        self.min_box = float(min_box)
        self.flip = flip
        self.overlay = float(overlay)
        self.epoch = 0  # set by the trainer before each epoch's loader

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
        rng = np.random.default_rng([self.seed, self.epoch, int(i)])
        s = int(rng.choice(len(self.samplers), p=self.probabilities))
        sampler, config = self.samplers[s], self.configs[s]
        k = int(rng.integers(len(sampler)))
        clip = sampler[k]
        frames = clip.frames.astype(np.float32)
        if clip.bit_depth == 16:
            frames *= np.float32(255.0 / 65535.0)
        boxes = clip.key.boxes.astype(np.float32).reshape(-1, 4)
        labels = clip.key.labels.astype(np.float32).reshape(-1)
        factor = float(rng.uniform(*config.scale))
        if factor > 1.0:
            height, width = frames.shape[1:]
            new_w, new_h = max(1, round(width / factor)), max(1, round(height / factor))
            frames = np.stack(
                [cv2.resize(f, (new_w, new_h), interpolation=cv2.INTER_AREA) for f in frames]
            )
            boxes = boxes * np.asarray(
                [new_w / width, new_h / height, new_w / width, new_h / height], np.float32
            )
        frames, boxes, labels = self._window(frames, boxes, labels, rng)
        count = int(rng.integers(config.painted[0], config.painted[1] + 1))
        if count:
            frames, painted = paint_targets(frames, count, rng)
            boxes = np.concatenate([boxes, painted])
            labels = np.concatenate([labels, np.zeros(len(painted), np.float32)])
        if self.overlay and rng.random() < self.overlay:
            draw_overlay(frames, rng)
        if self.flip and rng.random() < 0.5:
            frames = frames[:, :, ::-1]
            w = frames.shape[2]
            boxes = np.stack([w - boxes[:, 2], boxes[:, 1], w - boxes[:, 0], boxes[:, 3]], 1)
        boxes = grow_boxes(boxes, self.min_box)
        targets = np.stack(
            [
                labels,
                (boxes[:, 0] + boxes[:, 2]) / 2,
                (boxes[:, 1] + boxes[:, 3]) / 2,
                boxes[:, 2] - boxes[:, 0],
                boxes[:, 3] - boxes[:, 1],
            ],
            axis=1,
        ).reshape(-1, 5)
        h, w = self.input_size
        info = LetterboxInfo(1.0, 0, 0, (h, w), (h, w))
        meta = {
            "clip_index": int(i),
            "image_id": clip.key.image_id,
            "sequence": clip.key.sequence,
            "index": clip.key.index,
            "letterbox": info.to_dict(),
            "original_size": (h, w),
            "source": config.label(),
        }
        x = normalize(np.ascontiguousarray(frames))
        return x, torch.from_numpy(np.ascontiguousarray(targets, np.float32)), meta

    def _window(
        self, frames: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An input-size window of `frames [T, H, W]` (padded where the frame is smaller), the
        boxes shifted into it; targets less than half inside are dropped."""
        h, w = self.input_size
        height, width = frames.shape[1:]
        if len(boxes) and rng.random() < self.target_crop:
            x1, y1, x2, y2 = boxes[int(rng.integers(len(boxes)))]
            # the window's origin range that keeps this box inside (when it fits)
            x0 = rng.uniform(min(x2 - w, x1), max(x2 - w, x1))
            y0 = rng.uniform(min(y2 - h, y1), max(y2 - h, y1))
        else:
            x0 = rng.uniform(min(0, width - w), max(0, width - w))
            y0 = rng.uniform(min(0, height - h), max(0, height - h))
        # frames smaller than the window: any placement inside the padded canvas
        x0 = int(round(np.clip(x0, min(0, width - w), max(0, width - w))))
        y0 = int(round(np.clip(y0, min(0, height - h), max(0, height - h))))
        out = np.full((frames.shape[0], h, w), PAD_VALUE, np.float32)
        sx, sy = max(x0, 0), max(y0, 0)
        ex, ey = min(x0 + w, width), min(y0 + h, height)
        out[:, sy - y0 : ey - y0, sx - x0 : ex - x0] = frames[:, sy:ey, sx:ex]
        if len(boxes) == 0:
            return out, boxes.reshape(0, 4), labels
        shifted = boxes - np.asarray([x0, y0, x0, y0], np.float32)
        clipped = shifted.copy()
        clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(max(sx - x0, 0), ex - x0)
        clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(max(sy - y0, 0), ey - y0)
        area = (shifted[:, 2] - shifted[:, 0]) * (shifted[:, 3] - shifted[:, 1])
        inside = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        keep = inside >= 0.5 * np.maximum(area, 1e-6)
        return out, clipped[keep], labels[keep]


def paint_targets(
    frames: np.ndarray, count: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Paint `count` small targets into `frames [T, H, W]` (float 0..255).

    Each target is an elliptical Gaussian (sigma 0.5-1.6 px per axis: 2-5 px across) whose peak
    is 2-8 times the standard deviation of the clutter around it (at least 6 grey levels), bright
    or, one time in six, dark; it moves in a straight line at up to 1 px per clip frame and is at
    the drawn position in the key frame (last). Returns the frames and the key frame's boxes
    `[count, 4]` xyxy (+-2 sigma, at least 1 px a side)."""
    t, h, w = frames.shape
    out = frames.copy()
    boxes = []
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for _ in range(count):
        cx, cy = rng.uniform(4, max(w - 4, 5)), rng.uniform(4, max(h - 4, 5))
        sx, sy = rng.uniform(0.5, 1.6, size=2)
        vx, vy = rng.uniform(-1.0, 1.0, size=2)
        x0, x1 = int(max(cx - 16, 0)), int(min(cx + 16, w))
        y0, y1 = int(max(cy - 16, 0)), int(min(cy + 16, h))
        clutter = float(np.std(frames[-1, y0:y1, x0:x1])) if x1 > x0 and y1 > y0 else 0.0
        amplitude = float(np.clip(rng.uniform(2.0, 8.0) * max(clutter, 1.0), 6.0, 120.0))
        if rng.random() < 1 / 6:
            amplitude = -amplitude
        for k in range(t):
            px, py = cx + vx * (k - (t - 1)), cy + vy * (k - (t - 1))
            blob = np.exp(-0.5 * (((xx - px) / sx) ** 2 + ((yy - py) / sy) ** 2))
            out[k] = np.clip(out[k] + amplitude * blob, 0.0, 255.0)
        half_w, half_h = max(2 * sx, 1.0), max(2 * sy, 1.0)
        boxes.append([cx - half_w, cy - half_h, cx + half_w, cy + half_h])
    return out, np.asarray(boxes, np.float32).reshape(-1, 4)


_OVERLAY_CHARACTERS = "0123456789:./-+ ABCDEFGHKLMNPRSTUVXYZ"


def draw_overlay(frames: np.ndarray, rng: np.random.Generator) -> None:
    """Draw a burned-in overlay into `frames [T, H, W]` (float 0..255) in place, the same in
    every frame: 1-3 lines of text (a clock, coordinates, a label) and sometimes a crosshair,
    white or (one time in five) black."""
    t, h, w = frames.shape
    canvas = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.integers(1, 4))):
        length = int(rng.integers(3, 16))
        text = "".join(rng.choice(list(_OVERLAY_CHARACTERS), size=length))
        font = int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN,
                               cv2.FONT_HERSHEY_DUPLEX]))  # fmt: skip
        origin = (int(rng.integers(0, max(w - 20, 1))), int(rng.integers(10, max(h, 11))))
        cv2.putText(canvas, text, origin, font, float(rng.uniform(0.4, 1.3)), 255,
                    int(rng.integers(1, 3)), cv2.LINE_AA)  # fmt: skip
    if rng.random() < 0.3:
        cx, cy, size = int(rng.integers(0, w)), int(rng.integers(0, h)), int(rng.integers(6, 30))
        cv2.line(canvas, (cx - size, cy), (cx + size, cy), 255, 1)
        cv2.line(canvas, (cx, cy - size), (cx, cy + size), 255, 1)
    alpha = canvas.astype(np.float32) / 255.0
    value = 0.0 if rng.random() < 0.2 else float(rng.uniform(200, 255))
    frames[:] = frames * (1.0 - alpha) + value * alpha
