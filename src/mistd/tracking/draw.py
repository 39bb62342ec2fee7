"""Drawing tracks: boxes with ids and trails on a display frame."""

from __future__ import annotations

import cv2
import numpy as np

from mistd.tracking.tracker import Track


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per id (golden-ratio hue steps)."""
    hue = int((track_id * 0.618033988749895 % 1.0) * 179)
    hsv = np.uint8([[[hue, 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def draw_tracks(image: np.ndarray, tracks: list[Track]) -> np.ndarray:
    """Draw each track's box, `id` label and trail onto `image` `[H, W, 3]` BGR uint8 (in place).

    Boxes of a few pixels are drawn with a 3 px margin so the target itself stays visible.
    """
    for track in tracks:
        color = track_color(track.track_id)
        trail = np.round(track.trail).astype(np.int32).reshape(-1, 1, 2)
        if len(trail) > 1:
            cv2.polylines(image, [trail], False, color, 1, cv2.LINE_AA)
        x1, y1, x2, y2 = np.round(track.box).astype(int)
        cv2.rectangle(image, (x1 - 3, y1 - 3), (x2 + 3, y2 + 3), color, 1)
        cv2.putText(
            image,
            f"{track.track_id}",
            (x1 - 3, max(y1 - 6, 8)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.35,
            color,
            1,
            cv2.LINE_AA,
        )
    return image
