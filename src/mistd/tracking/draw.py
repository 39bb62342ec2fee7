"""Drawing tracks: boxes labelled `#id class score`, with trails, on a display frame."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from mistd.tracking.tracker import Track

FONT = cv2.FONT_HERSHEY_SIMPLEX
FONT_SCALE = 0.4
MARGIN = 3  # px between a box and its target: boxes of a few pixels would hide it


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def track_label(track: Track, class_names: Sequence[str] | None = None) -> str:
    """`#id class score`, e.g. `#3 drone 0.87`; the class id stands in for a name it lacks."""
    label = int(track.label)
    name = class_names[label] if class_names and 0 <= label < len(class_names) else str(label)
    return f"#{track.track_id} {name} {float(track.score):.2f}"


def draw_label(image: np.ndarray, text: str, box: Sequence[int], color) -> None:
    """`text` on a dark plate above `box` (x1, y1, x2, y2), below it where the top lacks room."""
    (width, height), baseline = cv2.getTextSize(text, FONT, FONT_SCALE, 1)
    x1, y1, _, y2 = box
    x = int(np.clip(x1, 0, max(image.shape[1] - width - 2, 0)))
    top = y1 - height - baseline - 3
    y = top if top >= 0 else min(y2 + 1, image.shape[0] - height - baseline - 2)
    cv2.rectangle(image, (x, y), (x + width + 2, y + height + baseline + 2), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 1, y + height + 1), FONT, FONT_SCALE, color, 1, cv2.LINE_AA)


def draw_tracks(
    image: np.ndarray, tracks: list[Track], class_names: Sequence[str] | None = None
) -> np.ndarray:
    """Draw each track's box, `#id class score` label and trail onto `image` `[H, W, 3]` BGR
    uint8 (in place). `class_names[label]` names a track's class (its latest detection's).

    Boxes are drawn `MARGIN` px outside the track's box so a target of a few pixels stays visible.
    """
    for track in tracks:
        color = track_color(track.track_id)
        trail = np.round(track.trail).astype(np.int32).reshape(-1, 1, 2)
        if len(trail) > 1:
            cv2.polylines(image, [trail], False, color, 1, cv2.LINE_AA)
        x1, y1, x2, y2 = np.round(track.box).astype(int)
        outer = (x1 - MARGIN, y1 - MARGIN, x2 + MARGIN, y2 + MARGIN)
        cv2.rectangle(image, outer[:2], outer[2:], color, 1)
        draw_label(image, track_label(track, class_names), outer, color)
    return image
