"""Readers for every on-disk layout (real samples in ../shared and tiny generated ones)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mistd.data.readers import detect_format, read_dataset
from mistd.data.readers.frames import load_frame, read_image
from mistd.data.readers.masks import boxes_from_mask
from mistd.data.video import VideoWriter
from mistd.data.writers import write_coco_json, write_uestc_txt


def _real(shared_dir: Path, *parts: str) -> Path:
    return shared_dir.joinpath("data", "real", *parts)


# --------------------------------------------------------------------------- real samples


def test_daub_uestc_index(shared_dir):
    ds = read_dataset(_real(shared_dir, "daub_index", "coco_val_DAUB.txt"))
    assert ds.format == "uestc"
    assert ds.num_frames == 4795
    assert [(s.name, len(s)) for s in ds.sequences] == [
        ("data6", 399),
        ("data11", 745),
        ("data12", 1500),
        ("data15", 751),
        ("data18", 500),
        ("data20", 400),
        ("data21", 500),
    ]
    first = ds.sequences[0].frames[0]
    assert first.index == 0 and first.width is None  # images are not in the sample
    np.testing.assert_array_equal(first.boxes, [[96, 77, 104, 85]])
    sizes = [tuple(float(v) for v in r.boxes[0, 2:] - r.boxes[0, :2]) for r in ds.frames()]
    # Fixed 8x8 boxes; one (data18 frame 463) is cut to 6 px by the left border.
    assert sizes.count((8.0, 8.0)) == 4794 and sizes.count((6.0, 8.0)) == 1


def test_daub_coco_matches_uestc(shared_dir):
    coco = read_dataset(_real(shared_dir, "daub_index", "DAUB_instances_test2017.json"))
    uestc = read_dataset(_real(shared_dir, "daub_index", "coco_val_DAUB.txt"))
    assert coco.format == "coco" and coco.class_names == ["target"]
    assert [(s.name, len(s)) for s in coco.sequences] == [(s.name, len(s)) for s in uestc.sequences]
    for a, b in zip(coco.frames(), uestc.frames(), strict=True):
        assert (a.sequence, a.index) == (b.sequence, b.index)
        np.testing.assert_array_equal(a.boxes, b.boxes)
    assert {(r.width, r.height) for r in coco.frames()} == {(256, 256)}


def test_irdst_masks(shared_dir):
    ds = read_dataset(_real(shared_dir, "irdst_example"))
    assert ds.format == "masks"
    assert [(s.name, [r.index for r in s.frames]) for s in ds.sequences] == [("1", [0, 1, 2])]
    record = ds.sequences[0].frames[0]
    assert (record.width, record.height) == (720, 480)
    assert record.mask is not None and record.mask.name == "1(1).bmp"
    np.testing.assert_array_equal(record.boxes, [[428, 163, 430, 166]])
    image, depth = load_frame(record)
    assert image.shape == (480, 720) and image.dtype == np.uint8 and depth == 8
    # Stored as RGB with equal channels: one channel kept exactly.
    raw = cv2.imread(str(record.path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(image, raw[..., 0])


def test_sirst_masks_components_not_xml(shared_dir):
    ds = read_dataset(_real(shared_dir, "sirst_v1"))
    assert ds.format == "masks" and len(ds.sequences) == 12 and ds.num_frames == 12
    by_name = {s.name: s.frames[0] for s in ds.sequences}
    # Misc_1.xml has one box spanning both targets; the mask has two components.
    np.testing.assert_array_equal(by_name["Misc_1"].boxes, [[70, 74, 72, 76], [219, 132, 222, 135]])
    assert sum(r.num_targets for r in ds.frames()) == 13
    for record in ds.frames():
        image, depth = load_frame(record)
        assert image.shape == (record.height, record.width) and depth == 8
        mask, _ = read_image(record.mask)
        ys, xs = np.nonzero(mask)
        assert record.boxes[:, 0].min() == xs.min() and record.boxes[:, 2].max() == xs.max() + 1
        assert record.boxes[:, 1].min() == ys.min() and record.boxes[:, 3].max() == ys.max() + 1


@pytest.mark.slow
@pytest.mark.parametrize("which", ["4.avi", "new_video_4_0.txt"])
def test_anti_uav_video_or_track(shared_dir, which):
    path = _real(shared_dir, "anti_uav", which)
    assert detect_format(path) == "anti-uav"
    ds = read_dataset(path)
    assert ds.format == "anti-uav" and ds.num_frames == 501 and len(ds.sequences) == 1
    record = ds.sequences[0].frames[0]
    assert record.path is None and record.video.name == "4.avi"
    assert (record.width, record.height) == (640, 512)
    np.testing.assert_allclose(record.boxes, [[227.16, 185.16, 227.16 + 13.68, 185.16 + 6.01]])
    last = ds.sequences[0].frames[-1]
    image, depth = load_frame(last)
    assert image.shape == (512, 640) and depth == 8


def test_plain_video_format_option(shared_dir):
    ds = read_dataset(_real(shared_dir, "anti_uav", "4.avi"), format="video")
    assert ds.format == "video" and ds.num_frames == 501
    assert all(r.num_targets == 0 for r in ds.frames())


# --------------------------------------------------------------------------- generated layouts


def _make_sequence(folder: Path, frames: int, size=(24, 16), dtype=np.uint8, ext=".png"):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    top = 255 if dtype == np.uint8 else 65535
    paths = []
    for k in range(frames):
        image = rng.integers(0, top, (size[1], size[0]), dtype=dtype)
        path = folder / f"{k}{ext}"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def test_uestc_root_remap_and_sizes(tmp_path):
    root = tmp_path / "DAUB"
    _make_sequence(root / "images" / "test" / "data6", 3)
    _make_sequence(root / "images" / "test" / "data7", 2)
    index = tmp_path / "elsewhere" / "index" / "val.txt"
    index.parent.mkdir(parents=True)
    lines = [
        "/home/public/DAUB/images/test/data6/0.bmp 1,2,5,6,0",
        "/home/public/DAUB/images/test/data6/1.bmp",
        "/home/public/DAUB/images/test/data6/2.bmp 1,2,5,6,0 10,10,24,16,0",
        "/home/public/DAUB/images/test/data7/0.bmp",
        "/home/public/DAUB/images/test/data7/1.bmp",
    ]
    # The index names .bmp; the files are .png: remap keeps the recorded name, so use png.
    index.write_text("\n".join(lines).replace(".bmp", ".png") + "\n")
    ds = read_dataset(index, root=root)
    assert [(s.name, len(s)) for s in ds.sequences] == [("data6", 3), ("data7", 2)]
    record = ds.sequences[0].frames[2]
    assert record.path == root / "images" / "test" / "data6" / "2.png"
    assert (record.width, record.height) == (24, 16) and record.num_targets == 2
    assert load_frame(record)[0].shape == (16, 24)
    # Without --root the recorded paths stay and the sizes are unknown.
    unresolved = read_dataset(index)
    assert unresolved.sequences[0].frames[0].width is None
    # An index inside the data set folder finds its images without --root.
    beside = root / "val.txt"
    beside.write_text(index.read_text())
    assert read_dataset(beside).sequences[0].frames[2].path == record.path


def test_uestc_relative_paths_against_index_folder(tmp_path):
    _make_sequence(tmp_path / "imgs" / "s1", 2, ext=".bmp")
    (tmp_path / "train.txt").write_text("imgs/s1/0.bmp 0,0,3,3,0\nimgs/s1/1.bmp\n")
    ds = read_dataset(tmp_path / "train.txt")
    assert ds.sequences[0].frames[1].path == tmp_path / "imgs" / "s1" / "1.bmp"
    assert ds.sequences[0].frames[0].width == 24


def test_mistd_directory_round_trip_16bit(tmp_path):
    from mistd.structures import FrameDataset, FrameRecord, Sequence

    records = []
    for k, path in enumerate(_make_sequence(tmp_path / "images" / "seqA", 3, dtype=np.uint16)):
        boxes = np.array([[2.5, 3, 6.5, 7]], np.float32) if k != 1 else np.zeros((0, 4), np.float32)
        records.append(
            FrameRecord(
                "seqA",
                k,
                path=path,
                boxes=boxes,
                labels=np.zeros(len(boxes), np.int64),
                width=24,
                height=16,
            )
        )
    original = FrameDataset([Sequence("seqA", records)])
    write_coco_json(original, tmp_path / "coco.json", tmp_path)
    write_uestc_txt(original, tmp_path / "uestc.txt", tmp_path)
    assert detect_format(tmp_path) == "coco"
    ds = read_dataset(tmp_path)
    assert [(r.sequence, r.index, r.num_targets) for r in ds.frames()] == [
        ("seqA", 0, 1),
        ("seqA", 1, 0),
        ("seqA", 2, 1),
    ]
    np.testing.assert_allclose(ds.sequences[0].frames[0].boxes, [[2.5, 3, 6.5, 7]])
    image, depth = load_frame(ds.sequences[0].frames[0])
    assert image.dtype == np.uint16 and depth == 16
    txt = read_dataset(tmp_path / "uestc.txt")
    assert txt.format == "uestc" and txt.num_frames == 3
    np.testing.assert_array_equal(txt.sequences[0].frames[0].boxes, [[2, 3, 6, 7]])


def test_image_folder_natural_order_and_gray_conversion(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for k in (10, 2, 1):
        color = np.zeros((8, 10, 3), np.uint8)
        color[..., 2] = k * 10  # unequal channels (red only): converted to gray
        cv2.imwrite(str(folder / f"f{k}.png"), color)
    ds = read_dataset(folder)
    assert ds.format == "images"
    assert [r.path.name for r in ds.frames()] == ["f1.png", "f2.png", "f10.png"]
    image, _ = load_frame(ds.sequences[0].frames[2])
    expected = cv2.cvtColor(cv2.imread(str(folder / "f10.png")), cv2.COLOR_BGR2GRAY)
    np.testing.assert_array_equal(image, expected)


def test_folder_of_sequence_folders(tmp_path):
    _make_sequence(tmp_path / "images" / "a", 2)
    _make_sequence(tmp_path / "images" / "b", 3)
    ds = read_dataset(tmp_path / "images")
    assert [(s.name, len(s)) for s in ds.sequences] == [("a", 2), ("b", 3)]
    # A mistd-style folder without annotation files: its images/ sub-folders.
    assert [(s.name, len(s)) for s in read_dataset(tmp_path).sequences] == [("a", 2), ("b", 3)]


def test_anti_uav_json_and_video_beside(tmp_path):
    video = tmp_path / "infrared.mp4"
    with VideoWriter(video, fps=10, size=(32, 24)) as writer:
        for _ in range(3):
            writer.write(np.zeros((24, 32, 3), np.uint8))
    (tmp_path / "infrared.json").write_text(
        json.dumps({"exist": [1, 0, 1], "gt_rect": [[1, 2, 3, 4], [], [5, 6, 2, 2]]})
    )
    for path in (video, tmp_path / "infrared.json", tmp_path):
        ds = read_dataset(path)
        assert ds.format == "anti-uav"
        assert [r.num_targets for r in ds.frames()] == [1, 0, 1]
        np.testing.assert_allclose(ds.sequences[0].frames[2].boxes, [[5, 6, 7, 8]])


def test_track_txt_separators_and_empty_frames(tmp_path):
    video = tmp_path / "clip.avi"
    with VideoWriter(tmp_path / "clip.mp4", fps=10, size=(32, 24)) as writer:
        for _ in range(4):
            writer.write(np.zeros((24, 32, 3), np.uint8))
    (tmp_path / "clip.mp4").rename(video)
    (tmp_path / "track.txt").write_text("1,2,3,4\n0 0 0 0\n\n2.5\t3\t4\t5\n")
    ds = read_dataset(video)
    assert [r.num_targets for r in ds.frames()] == [1, 0, 0, 1]
    np.testing.assert_allclose(ds.sequences[0].frames[3].boxes, [[2.5, 3, 6.5, 8]])


def test_boxes_from_mask_8_connected():
    mask = np.zeros((10, 10), np.uint8)
    mask[1, 1] = mask[2, 2] = 255  # diagonal neighbours: one component
    mask[6:8, 5:9] = 1
    np.testing.assert_array_equal(boxes_from_mask(mask), [[1, 1, 3, 3], [5, 6, 9, 8]])
    assert boxes_from_mask(np.zeros((4, 4), np.uint8)).shape == (0, 4)


def _tiny_video(path: Path, frames: int) -> None:
    with VideoWriter(path.with_suffix(".mp4"), fps=10, size=(32, 24)) as writer:
        for _ in range(frames):
            writer.write(np.zeros((24, 32, 3), np.uint8))
    if path.suffix != ".mp4":
        path.with_suffix(".mp4").rename(path)


def test_anti_uav_folder_of_several_clips(tmp_path):
    from mistd.errors import InputError

    # the Anti-UAV release layout: N.avi beside new_video_N_0.txt, several clips per folder
    for n, frames in ((4, 3), (10, 2), (41, 4)):
        _tiny_video(tmp_path / f"{n}.avi", frames)
        lines = [f"{n % 7}\t2\t3\t4"] * frames
        (tmp_path / f"new_video_{n}_0.txt").write_text("\n".join(lines) + "\n")
    ds = read_dataset(tmp_path)
    assert ds.format == "anti-uav"
    assert sorted((s.name, len(s)) for s in ds.sequences) == [("10", 2), ("4", 3), ("41", 4)]
    for seq in ds.sequences:  # each video got its own track file (x = N mod 7)
        np.testing.assert_allclose(seq.frames[0].boxes[0, 0], int(seq.name) % 7)
    # one video or one track file of the folder picks its partner by name
    one = read_dataset(tmp_path / "10.avi")
    assert [(s.name, len(s)) for s in one.sequences] == [("10", 2)]
    assert read_dataset(tmp_path / "new_video_41_0.txt").sequences[0].name == "41"
    # a video without a matching track file among several is an error naming the video
    _tiny_video(tmp_path / "7.avi", 2)
    with pytest.raises(InputError, match=r"7\.avi.*no annotation file matches"):
        read_dataset(tmp_path / "7.avi")
