"""Bad input gives one-line `InputError`s naming the file/line, and CLI exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mistd.data.clips import ClipSampler
from mistd.data.readers import read_dataset
from mistd.data.readers.frames import load_frame
from mistd.data.video import VideoWriter
from mistd.errors import InputError


def _images(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    for k, (w, h) in enumerate(sizes):
        cv2.imwrite(str(folder / f"{k}.png"), np.zeros((h, w), np.uint8))


def _raises(path, match, **kwargs):
    with pytest.raises(InputError) as info:
        read_dataset(path, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message or path.name in message
    for part in match:
        assert part in message, message
    return message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("s/0.png 1,2,3,0", "expected five integers"),
        ("s/0.png 1,2,a,4,0", "bad box '1,2,a,4,0'"),
        ("s/0.png 1.5,2,3,4,0", "expected five integers"),
    ],
)
def test_uestc_malformed_lines(tmp_path, line, expected):
    index = tmp_path / "bad.txt"
    index.write_text(f"s/1.png\n{line}\n")
    _raises(index, ["bad.txt:2", expected])


def test_uestc_box_with_no_size(tmp_path):
    index = tmp_path / "idx.txt"
    index.write_text("s/0.png 5,5,5,9,0\n")
    _raises(index, ["idx.txt:1", "[5, 5, 5, 9]", "non-positive"])


def test_uestc_box_outside_image(tmp_path):
    _images(tmp_path / "s", [(20, 10), (20, 10)])
    index = tmp_path / "idx.txt"
    # Touching the border (x2 = 20) is fine; y2 = 11 > 10 is not.
    index.write_text("s/0.png 0,0,20,10,0\ns/1.png 3,4,8,11,0\n")
    _raises(index, ["idx.txt:2", "[3, 4, 8, 11]", "20x10"])


def test_uestc_gap_names_missing_frame(tmp_path):
    index = tmp_path / "idx.txt"
    index.write_text("/x/data6/0.bmp\n/x/data6/1.bmp\n/x/data6/3.bmp\n")
    _raises(index, ["idx.txt:3", "frame 2 is missing", "data6"])


def test_uestc_frame_not_numbered(tmp_path):
    index = tmp_path / "idx.txt"
    index.write_text("seq/frame_a.png\n")
    _raises(index, ["idx.txt:1", "<k>.<ext>"])


def test_coco_errors(tmp_path):
    coco = tmp_path / "instances_bad.json"
    coco.write_text("{not json")
    _raises(coco, ["instances_bad.json", "JSON"])
    image = {"id": 1, "file_name": "s/0.png", "width": 16, "height": 8}
    coco.write_text(
        json.dumps(
            {
                "images": [image],
                "annotations": [{"id": 7, "image_id": 1, "bbox": [10, 2, 8, 3], "category_id": 1}],
                "categories": [{"id": 1, "name": "target"}],
            }
        )
    )
    _raises(coco, ["annotations[0] (id 7)", "[10, 2, 18, 5]", "16x8"])
    coco.write_text(
        json.dumps(
            {
                "images": [image],
                "annotations": [{"id": 7, "image_id": 3, "bbox": [1, 2, 3, 3], "category_id": 1}],
            }
        )
    )
    _raises(coco, ["unknown image_id 3"])
    coco.write_text(json.dumps({"images": [{"id": 1}], "annotations": []}))
    _raises(coco, ["images[0]", "file_name"])


def _video(path, frames=3):
    with VideoWriter(path, fps=10, size=(32, 24)) as writer:
        for _ in range(frames):
            writer.write(np.zeros((24, 32, 3), np.uint8))


def test_track_file_errors(tmp_path):
    _video(tmp_path / "v.mp4")
    track = tmp_path / "v.txt"
    track.write_text("1 2 3 4\n1 2 3\n0 0 0 0\n")
    _raises(track, ["v.txt:2", "four numbers"])
    track.write_text("1 2 3 4\n")
    _raises(track, ["v.txt", "1 entries", "3 frames"])
    track.write_text("1 2 3 4\n30 2 5 4\n\n")
    _raises(track, ["v.txt:2", "[30, 2, 35, 6]", "32x24"])
    track.write_text("1 2 0 4\n\n\n")
    _raises(track, ["v.txt:1", "non-positive"])


def test_corrupt_and_missing_images(tmp_path):
    _images(tmp_path / "s", [(8, 8)])
    (tmp_path / "s" / "1.png").write_bytes(b"\x89PNG garbage")
    index = tmp_path / "idx.txt"
    index.write_text("s/0.png\ns/1.png\ns/2.png\n")
    ds = read_dataset(index)
    with pytest.raises(InputError, match=r"1\.png: cannot read image"):
        load_frame(ds.sequences[0].frames[1])
    with pytest.raises(InputError, match=r"2\.png: image not found"):
        load_frame(ds.sequences[0].frames[2])
    with pytest.raises(InputError, match=r"1\.png"):
        ClipSampler(ds, 3)[1]


def test_frame_size_change_inside_sequence(tmp_path):
    _images(tmp_path / "s", [(16, 8), (16, 8), (12, 8)])
    index = tmp_path / "idx.txt"
    index.write_text("s/0.png\ns/1.png\ns/2.png\n")
    ds = read_dataset(index)
    with pytest.raises(InputError) as info:
        ClipSampler(ds, 2)[2]
    message = str(info.value)
    assert "2.png" in message and "12x8" in message and "16x8" in message


def test_missing_mask_and_unknown_format(tmp_path):
    (tmp_path / "masks").mkdir()
    _images(tmp_path / "images", [(8, 8)])
    _raises(tmp_path, ["no mask for 0.png"])
    odd = tmp_path / "data.xyz"
    odd.write_text("?")
    message = _raises(odd, ["unknown file type"])
    for name in ("uestc", "coco", "masks", "anti-uav", "video", "images"):
        assert name in message
    with pytest.raises(InputError, match="unknown format 'yolo'"):
        read_dataset(tmp_path, format="yolo")


def _cli(*args):
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run(
        [sys.executable, "-m", "mistd.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


@pytest.mark.slow
def test_cli_exit_code_2_without_traceback(tmp_path):
    index = tmp_path / "bad.txt"
    index.write_text("s/0.png 1,2,3,0\n")
    result = _cli("data", "info", index)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "bad.txt:1" in lines[0]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    _images(tmp_path / "frames", [(8, 8)])
    result = _cli("data", "convert", tmp_path / "frames", "--out", out)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert "Traceback" not in result.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_gaps_in_an_image_folders_frame_numbers_warn(tmp_path) -> None:
    import cv2
    import numpy as np

    from mistd.data.readers import read_dataset

    for k in (0, 1, 3):
        cv2.imwrite(str(tmp_path / f"{k}.png"), np.zeros((8, 8), np.uint8))
    with pytest.warns(UserWarning, match=r"frame numbers have gaps \(1 missing, the first 2\)"):
        data = read_dataset(tmp_path)
    assert data.num_frames == 3
