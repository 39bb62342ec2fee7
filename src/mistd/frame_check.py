"""Frame check: a learned detector's boxes re-measured in the frame they were found in.

A trained model says where a target is and how sure it is, but both its box sizes and its score
scale are what it learnt on its training cameras. On a camera it never saw, two things go wrong
(Anti-UAV `4.avi` with `yolox-gen-s`: its best box lies within 5 px of the drone in 73% of
frames, yet mAP50 is 14): boxes keep the training data's shapes (10x8 where the drone is 14x6,
IoU below 0.5), and the scores of faint noise blobs on a flat sky reach the drone's, because the
network's input is not normalised by the camera's own noise. The frame itself measures both:

- `regrow`: the target's extent is measured around the box's peak (its brightest pixel, or its
  darkest where the box holds a blob darker than its surroundings: a cold target) with the
  classical detectors' rule (`mistd.classical.base.BoxRule`: the region above a fraction of the
  blob's contrast over the saddle where it joins its surroundings, plus `margin` px a side); the
  box is centred on that extent, each side the larger of the extent's and the model's (boxes
  never shrink: the loose boxes a model learnt from drone_ir stay loose; a box covering the
  model's box and the extent instead moves its centre off the target, which costs Pd on
  SIRST-V2). Boxes that come to cover one blob are merged (NMS, IoU 0.5).
- `contrast_scale` (c > 0): each score is multiplied by `1 - exp(-z / c)`, `z` the box's peak
  contrast (smoothed frame: the box's max above, or its min below, the median of the 49x49
  window around the box's centre, whichever is larger) in units of the frame's noise (1.4826 x
  the median absolute deviation of the frame minus its sigma-2 Gaussian blur). A blob at the
  noise level loses its score; a real target keeps it.
- `margin` (px a side, default 2): what the annotations of Anti-UAV and DAUB add around a
  target's visible extent; data sets with boxes tight around the target's mask (SIRST) are
  scored better with 0 (`benchmarks/frame_check.py`).

Both are per-model settings a checkpoint may carry under the top-level key `frame_check`
(`{"regrow": true, "contrast_scale": 100.0, "margin": 2.0}`); `mistd.weights.read_weights`
parses it here (`FrameCheck.from_dict`), the Predictor applies it as a stage
(`FrameCheckStage`), and `--frame-check on|off` / `Predictor(frame_check=...)` override it. Off
for every model unless its checkpoint says otherwise. How the shipped settings were chosen:
`python benchmarks/frame_check.py MODEL` (docs/results.md).

No torch here: an onnxruntime predictor runs it too.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np

from mistd.errors import InputError, in_range
from mistd.frames import to_gray

CHECKPOINT_KEY = "frame_check"
# Boxes re-measured per frame, highest scores first; the rest are dropped (only the scoring of
# `mistd eval`, which keeps every box above the decoding floor, ever has more).
MAX_BOXES = 100
SMOOTH_SIGMA = 0.8  # the classical detectors' matched filter for a point-spread target
NOISE_SIGMA = 2.0  # the blur whose residual measures the frame's noise
CONTEXT = 49  # side of the window whose median is a box's background (the rule's max_box + 1)
MERGE_IOU = 0.5


@dataclass(frozen=True)
class FrameCheck:
    """Per-model frame-check settings (module docstring): grow boxes over the target's extent
    (`regrow`, `margin` px a side), weight scores by contrast over noise with `contrast_scale`
    (0: off)."""

    regrow: bool = False
    contrast_scale: float = 0.0
    margin: float = 2.0

    @property
    def enabled(self) -> bool:
        return self.regrow or self.contrast_scale > 0

    @classmethod
    def from_dict(cls, data: Any, source: Any = None) -> FrameCheck:
        """Settings from a checkpoint's `frame_check` entry (None: off). InputError naming
        `source` for a non-dict, an unknown key or a bad value."""
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise InputError(
                f"'{CHECKPOINT_KEY}' must be a dict with regrow / contrast_scale / margin, "
                f"got {type(data).__name__}",
                source,
            )
        known = set(asdict(cls()))
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"'{CHECKPOINT_KEY}' has unknown key(s) {unknown} (expected {sorted(known)})",
                source,
            )
        regrow = data.get("regrow", False)
        if not isinstance(regrow, bool):
            raise InputError(f"'{CHECKPOINT_KEY}.regrow' must be true or false", source)
        numbers = {}
        for key, interval, what in (
            ("contrast_scale", "[0, 1000]", "a number"),
            ("margin", "[0, 10]", "a number of pixels"),
        ):
            value = data.get(key, getattr(cls, key))
            if not in_range(value, interval):
                raise InputError(
                    f"'{CHECKPOINT_KEY}.{key}' must be {what} in {interval}, got {value!r}", source
                )
            numbers[key] = float(value)
        return cls(regrow=regrow, **numbers)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def switched(self, enabled: bool | None) -> FrameCheck:
        """These settings (None), all off (False), or these settings with regrow on where none is
        set (True: what `--frame-check on` asks of a model without its own)."""
        if enabled is None:
            return self
        if not enabled:
            return FrameCheck()
        return self if self.enabled else replace(self, regrow=True)


SWITCHES = {"auto": None, "on": True, "off": False}


def resolve_frame_check(value: Any, own: FrameCheck) -> FrameCheck:
    """The frame check a predictor runs, from the model's `own` settings and `value`: None /
    "auto" (`own`), False / "off", True / "on" (`FrameCheck.switched`), a `FrameCheck`, or
    "key=value,..." (e.g. `margin=0`: `own` with those keys changed; on, with regrow, where the
    model sets nothing). InputError for anything else."""
    if isinstance(value, FrameCheck):
        return value
    if value is None or isinstance(value, bool):
        return own.switched(value)
    text = str(value).strip().lower()
    if text in SWITCHES:
        return own.switched(SWITCHES[text])
    base = own.switched(True).to_dict()
    for item in text.split(","):
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in base:
            raise InputError(
                f"--frame-check: expected auto, on, off or key=value pairs of "
                f"{', '.join(base)} (e.g. margin=0), got '{value}'"
            )
        raw = raw.strip()
        if key == "regrow":
            if raw not in ("on", "off", "true", "false"):
                raise InputError(f"--frame-check regrow: expected on or off, got '{raw}'")
            base[key] = raw in ("on", "true")
            continue
        try:
            base[key] = float(raw)
        except ValueError:
            raise InputError(f"--frame-check {key}: expected a number, got '{raw}'") from None
    return FrameCheck.from_dict(base, "--frame-check")


def median(values: np.ndarray) -> float:
    """`np.median` of an array, by one partition and a max (2.5x faster on a 640x512 frame: the
    frame check runs on every frame)."""
    flat = np.asarray(values).ravel()
    k = flat.size // 2
    part = np.partition(flat, k)
    upper = float(part[k])
    return upper if flat.size % 2 else (float(part[:k].max()) + upper) / 2


def frame_noise(image: np.ndarray) -> float:
    """Robust noise of a `[H, W]` float frame: 1.4826 x MAD of its residual after a sigma-2
    Gaussian blur (a floor of 1e-3 grey levels)."""
    residual = image - cv2.GaussianBlur(image, (0, 0), NOISE_SIGMA)
    mad = median(np.abs(residual - np.float32(median(residual))))
    return max(1.4826 * mad, 1e-3)


class FrameCheckStage:
    """Post-processing stage (`Predictor`): regrow boxes and weight scores by contrast in
    `results.frame` (module docstring). Needs the frame; passes results without one through."""

    def __init__(self, check: FrameCheck, min_score: float = 0.0):
        from mistd.classical.base import BoxRule

        self.check = check
        self.rule = BoxRule(margin=check.margin)
        # boxes below it are dropped unchecked: a check only lowers scores, so a box under the
        # display threshold stays under it (the Predictor sets it when only shown boxes matter)
        self.min_score = min_score

    def reset(self) -> None:
        pass

    def __call__(self, results):
        if not self.check.enabled or results.frame is None or len(results) == 0:
            return results
        from mistd.boxes import batched_nms
        from mistd.classical.base import _segment, gaussian_smooth

        order = np.argsort(-results.scores, kind="stable")[:MAX_BOXES]
        order = order[results.scores[order] >= self.min_score]
        results = results[order]
        if len(results) == 0:  # nothing left to check: no frame-wide work
            return results
        gray = to_gray(results.frame).astype(np.float32)
        image = gaussian_smooth(gray, SMOOTH_SIGMA)
        height, width = image.shape
        boxes = results.boxes.copy()
        scores = results.scores.copy()
        noise = frame_noise(gray) if self.check.contrast_scale > 0 else 1.0
        half = CONTEXT // 2
        negative = None  # the frame with dark targets made bright, when one is needed
        for i, (x1, y1, x2, y2) in enumerate(boxes):
            left, top = min(max(int(x1), 0), width - 1), min(max(int(y1), 0), height - 1)
            right = min(max(int(math.ceil(x2)), left + 1), width)
            bottom = min(max(int(math.ceil(y2)), top + 1), height)
            patch = image[top:bottom, left:right]
            cy, cx = (top + bottom) // 2, (left + right) // 2
            window = image[max(cy - half, 0) : cy + half + 1, max(cx - half, 0) : cx + half + 1]
            background = float(np.median(window))
            # a target is a blob brighter or darker than its surroundings (hot or cold)
            bright = float(patch.max()) - background
            dark = background - float(patch.min())
            source = image
            if dark > bright:
                if negative is None:
                    negative = -image
                source = negative
            py, px = np.unravel_index(int(np.argmax(source[top:bottom, left:right])), patch.shape)
            if self.check.contrast_scale > 0:
                z = max(bright, dark, 0.0) / noise
                scores[i] *= 1.0 - math.exp(-z / self.check.contrast_scale)
            if self.check.regrow:
                grown = _segment(source, top + int(py), left + int(px), self.rule, None)
                if grown is not None:  # centred on the target, never smaller than the model's
                    cx, cy = (grown[0] + grown[2]) / 2, (grown[1] + grown[3]) / 2
                    half_w = max(grown[2] - grown[0], x2 - x1) / 2
                    half_h = max(grown[3] - grown[1], y2 - y1) / 2
                    boxes[i] = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        results.boxes, results.scores = boxes, scores.astype(np.float32)
        if self.check.regrow and len(results) > 1:
            # regrown boxes of one blob coincide: one per class
            keep = batched_nms(boxes, results.scores, results.labels, MERGE_IOU)
            results = results[np.sort(keep)]
        return results
