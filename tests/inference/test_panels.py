"""CHAL's map panels: a colour bar per map, and file names that sort in frame order."""

from __future__ import annotations

import cv2
import numpy as np
import torch

from mistd.data.transforms import LetterboxInfo
from mistd.inference.panels import (
    COLOUR_BAR_WIDTH,
    MapPanelWriter,
    colour_bar,
    map_panels,
    panel_file_name,
)
from mistd.inference.results import Results

H, W = 48, 64


def _maps(with_maps: bool = True) -> dict | None:
    y = torch.linspace(0, 1, 8)[:, None].expand(8, 8)  # a vertical ramp, 0 at the top
    maps = {"background": 5 + 10 * y, "anomaly": y, "gate": 0.5 * torch.ones(8, 8)}
    return maps if with_maps else None


def test_every_map_has_a_colour_bar_with_its_scale():
    info = LetterboxInfo.compute((H, W), (64, 64))
    panel = map_panels(np.zeros((H, W, 3), np.uint8), _maps(), info)
    assert panel.shape == (H, W + 3 * (W + COLOUR_BAR_WIDTH), 3)
    bar = colour_bar(H, 0.0, 1.0)
    strip = bar[:, 2:12].astype(int)
    # high at the top, low at the bottom: the colour map's bright end above its dark end
    assert strip[0].sum() > strip[-1].sum() + 300
    assert (strip[:, 0] == strip[:, -1]).all()  # one colour per row
    assert bar[:, 14:].any()  # the scale's end values are written beside the strip
    # each map tile is followed by a bar; the background's bar is written with its own range
    for k in range(3):
        start = W + k * (W + COLOUR_BAR_WIDTH) + W
        assert (panel[:, start + 2 : start + 12] == bar[:, 2:12]).all()
    background_bar = panel[:, 2 * W : 2 * W + COLOUR_BAR_WIDTH]
    assert not (background_bar[:, 14:] == bar[:, 14:]).all()  # "15" / "5", not "1" / "0"
    # a map the model lacks: black tile and bar, titled n/a
    empty = map_panels(np.zeros((H, W, 3), np.uint8), _maps(False), info)
    assert empty.shape == panel.shape
    assert not empty[H // 2 :, W + COLOUR_BAR_WIDTH :].any()


def test_panel_pngs_are_zero_padded_and_sort_in_frame_order(tmp_path):
    assert panel_file_name(7) == "000007.png" and panel_file_name(123456) == "123456.png"
    info = LetterboxInfo.compute((H, W), (64, 64))
    with MapPanelWriter(tmp_path, fps=10) as writer:
        for index in (0, 2, 10, 100):
            results = Results(frame_index=index, sequence="clip 1", maps=_maps(), letterbox=info)
            writer.write(results, np.zeros((H, W, 3), np.uint8))
    names = sorted(p.name for p in (tmp_path / "clip_1").iterdir())
    # frame numbers in file names are 1-based (positions 0, 2, 10, 100)
    assert names == ["000001.png", "000003.png", "000011.png", "000101.png"]
    image = cv2.imread(str(tmp_path / "clip_1" / "000011.png"))
    assert image.shape == (H, W + 3 * (W + COLOUR_BAR_WIDTH), 3)
    assert writer.videos == [tmp_path / "clip_1.mp4"] and writer.videos[0].stat().st_size > 0
