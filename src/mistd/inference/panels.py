"""CHAL map panels for `mistd detect --maps` and `mistd demo`: input with boxes | predicted
background | anomaly | gate, side by side at the frame's original size."""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from mistd.data.transforms import LetterboxInfo

PANELS = (
    ("background", "predicted background (|B|)"),
    ("anomaly", "anomaly"),
    ("gate", "gate H"),
)


def map_to_original(value: torch.Tensor, info: LetterboxInfo) -> np.ndarray:
    """A model-resolution map `[h, w]` -> `[H, W]` float32 over the original frame: bilinear to
    the input size, the letterbox padding cropped, resized to the frame."""
    h_in, w_in = info.input_size
    up = F.interpolate(
        value[None, None].float(), size=(h_in, w_in), mode="bilinear", align_corners=False
    )[0, 0]
    nh, nw = info.resized_size
    crop = up[info.pad_y : info.pad_y + nh, info.pad_x : info.pad_x + nw].cpu().numpy()
    height, width = info.original_size
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_LINEAR)


COLOUR_BAR_WIDTH = 44  # px right of each map: a 10 px gradient and its end values
COLOUR_MAP = cv2.COLORMAP_INFERNO


def _colour(value: np.ndarray, low: float, high: float) -> np.ndarray:
    scaled = np.clip((value - low) / max(high - low, 1e-12), 0.0, 1.0)
    return cv2.applyColorMap((scaled * 255).astype(np.uint8), COLOUR_MAP)


def _scale_text(value: float) -> str:
    return f"{value:.3g}"


def colour_bar(height: int, low: float, high: float) -> np.ndarray:
    """`[height, COLOUR_BAR_WIDTH, 3]` BGR: the colour map from `high` (top) to `low` (bottom)
    as a 10 px strip, with both values written beside its ends."""
    bar = np.zeros((height, COLOUR_BAR_WIDTH, 3), np.uint8)
    ramp = np.linspace(255, 0, height).astype(np.uint8)[:, None]
    bar[:, 2:12] = cv2.applyColorMap(np.repeat(ramp, 10, axis=1), COLOUR_MAP)
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.3
    (_, text_h), _ = cv2.getTextSize("0", font, scale, 1)
    cv2.putText(bar, _scale_text(high), (14, text_h + 1), font, scale, (255, 255, 255), 1)
    cv2.putText(bar, _scale_text(low), (14, height - 2), font, scale, (255, 255, 255), 1)
    return bar


def _title(image: np.ndarray, text: str) -> np.ndarray:
    cv2.putText(image, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1)
    return image


def map_panels(
    overlay_bgr: np.ndarray, maps: dict[str, torch.Tensor] | None, info: LetterboxInfo
) -> np.ndarray:
    """`[H, W + 3 (W + COLOUR_BAR_WIDTH), 3]` BGR: the overlay (frame with boxes), then the key
    frame's predicted background (L2 norm over channels, scaled from its min to its max),
    anomaly and gate (fixed 0..1 scale), each with a colour bar giving its scale. Maps a
    configuration lacks (`maps`: a `Results.maps` dict) are drawn black, titled "n/a"."""
    maps = maps or {}
    height, width = overlay_bgr.shape[:2]
    tiles = [overlay_bgr]
    for name, title in PANELS:
        if name in maps:
            value = map_to_original(maps[name], info)
            fixed = name != "background"
            low = 0.0 if fixed else float(value.min())
            high = 1.0 if fixed else float(value.max())
            tile = _colour(value, low, high)
            bar = colour_bar(height, low, high)
        else:
            tile = np.zeros((height, width, 3), np.uint8)
            bar = np.zeros((height, COLOUR_BAR_WIDTH, 3), np.uint8)
            title = f"{title}: n/a"
        tiles += [_title(np.ascontiguousarray(tile), title), bar]
    return np.concatenate(tiles, axis=1)


def panel_file_name(number: int) -> str:
    """`000042.png` for frame number 42: zero-padded, so file names sort in frame order."""
    return f"{number:06d}.png"


class MapPanelWriter:
    """Writes `map_panels` of every frame as `<folder>/<sequence>/<frame>.png` (the frame number,
    1-based as in every file mistd writes, zero-padded to 6 digits) and one
    `<folder>/<sequence>.mp4` per sequence (context manager; videos are finished on exit).

    Frames come as `Results` of a `Predictor(..., maps=True)` (CHAL streamed with the torch
    backend): their `maps` and `letterbox` give the panels.

    Args:
        folder: output folder. fps: video frame rate.
    """

    def __init__(self, folder, fps: float):
        from pathlib import Path

        from mistd.data.video import SequenceVideos

        self.folder = Path(folder)
        self.fps = float(fps)
        self._videos = SequenceVideos(self.folder, fps)

    @property
    def videos(self) -> list:
        return self._videos.videos

    def write(self, results, overlay_bgr: np.ndarray) -> None:
        """Write the panels of one frame's `results` (`overlay_bgr`: the frame with boxes)."""
        from mistd.data.video import sequence_file_name
        from mistd.io import atomic_path

        panels = map_panels(overlay_bgr, results.maps, results.letterbox)
        name = sequence_file_name(results.sequence)
        png = self.folder / name / panel_file_name(results.frame_index + 1)  # 1-based, as files
        png.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(png) as tmp:
            cv2.imwrite(str(tmp), panels)
        self._videos.write(results.sequence, panels)

    def __enter__(self) -> MapPanelWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self._videos.__exit__(*exc_info)
