"""The SIRST-V2 layout (`images/` + VOC `bboxes/` + `masks/` + `splits/`): real frames and a tiny
generated folder."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from mistd.data.readers import detect_format, read_dataset
from mistd.errors import InputError


def test_real_sirst_v2_splits(shared_dir):
    folder = shared_dir / "data" / "real" / "sirst_v2"
    assert detect_format(folder) == "sirst"
    val = read_dataset(folder, select="val")
    train = read_dataset(folder, select="train")
    # 132 val / 257 train frames with targets, plus 25 target-free frames in each split
    assert (len(val.sequences), len(train.sequences)) == (157, 282)
    assert all(len(s) == 1 for s in val.sequences)
    assert sum(1 for f in val.frames() if f.num_targets == 0) == 25
    assert not {s.name for s in val.sequences} & {s.name for s in train.sequences}
    misc = next(f for f in train.frames() if f.sequence == "Misc_249")
    # VOC corners are inclusive: xmin 225 .. xmax 235 covers 11 pixels
    np.testing.assert_array_equal(misc.boxes[0], [225, 69, 236, 78])
    assert val.class_names == ["target"]


def _write(folder, name, boxes, size=(40, 30)):
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "bboxes").mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "images" / f"{name}.png"), np.zeros(size[::-1], np.uint8))
    objects = "".join(
        f"<object><name>Target</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
        f"<ymax>{d}</ymax></bndbox></object>"
        for a, b, c, d in boxes
    )
    (folder / "bboxes" / f"{name}.xml").write_text(
        f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height></size>"
        f"{objects}</annotation>"
    )


def test_sirst_frames_of_different_sizes_and_negatives(tmp_path):
    _write(tmp_path, "a", [(3, 4, 5, 6)], size=(40, 30))
    _write(tmp_path, "b", [], size=(64, 48))
    (tmp_path / "splits").mkdir()
    (tmp_path / "splits" / "val.txt").write_text("b\n")
    ds = read_dataset(tmp_path)
    assert [(f.sequence, f.width, f.height, f.num_targets) for f in ds.frames()] == [
        ("a", 40, 30, 1),
        ("b", 64, 48, 0),
    ]
    assert [s.name for s in read_dataset(tmp_path, select="val").sequences] == ["b"]
    with pytest.raises(InputError, match="splits: val"):
        read_dataset(tmp_path, select="test")


def test_sirst_bad_box_names_the_file(tmp_path):
    _write(tmp_path, "a", [(5, 4, 3, 6)])
    with pytest.raises(InputError, match=r"a\.xml.*xmax < xmin"):
        read_dataset(tmp_path)
