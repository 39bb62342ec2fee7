"""video-csv reader (folder of videos + per-video label CSVs), selection, classes, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mistd.data.readers import detect_format, read_dataset
from mistd.data.video import VideoWriter
from mistd.errors import InputError

SIZE = (40, 32)  # width, height


def _video(path: Path, frames: int = 6) -> None:
    with VideoWriter(path, fps=10, size=SIZE) as writer:
        for k in range(frames):
            image = np.full((SIZE[1], SIZE[0]), 20 + 10 * k, np.uint8)
            writer.write(image)


def _folder(tmp_path: Path, rows: dict[str, str], clips: str | None = None) -> Path:
    (tmp_path / "videos").mkdir()
    (tmp_path / "labels").mkdir()
    for name, text in rows.items():
        _video(tmp_path / "videos" / f"{name}.mp4")
        if text is not None:
            (tmp_path / "labels" / f"{name}_LABELS.csv").write_text(
                "frame,label,x,y,width,height\n" + text
            )
    if clips is not None:
        (tmp_path / "clips.csv").write_text(clips)
    return tmp_path


GOOD = {
    "IR_DRONE_001": "0,DRONE,1,2,5,4\n1,DRONE,2,2,5,4\n1,BIRD,20,10,3,3\n",
    "IR_BIRD_001": "3,BIRD,10,10,4,4\n",
}
CLIPS = (
    "clip,class,distance_bin,split\nIR_DRONE_001,drone,close,train\nIR_BIRD_001,bird,distant,val\n"
)


def test_reads_folder_classes_attributes_and_selection(tmp_path: Path) -> None:
    root = _folder(tmp_path, GOOD, CLIPS)
    assert detect_format(root) == "video-csv"
    data = read_dataset(root)
    assert data.class_names == ["bird", "drone"]
    names = [s.name for s in data.sequences]
    assert sorted(names) == ["IR_BIRD_001", "IR_DRONE_001"]
    drone = next(s for s in data.sequences if s.name == "IR_DRONE_001")
    assert len(drone) == 6 and drone.attributes["distance_bin"] == "close"
    np.testing.assert_allclose(drone.frames[0].boxes, [[1, 2, 6, 6]])
    assert drone.frames[1].labels.tolist() == [1, 0]
    assert drone.frames[2].num_targets == 0
    val = read_dataset(root, select="val")
    assert [s.name for s in val.sequences] == ["IR_BIRD_001"]
    assert val.class_names == ["bird", "drone"]  # same ids whatever the selection
    listed = tmp_path / "names.txt"
    listed.write_text("# one per line\nIR_DRONE_001\n")
    assert [s.name for s in read_dataset(root, select=str(listed)).sequences] == ["IR_DRONE_001"]
    merged = read_dataset(root, classes="target")
    assert merged.class_names == ["target"]
    assert all((f.labels == 0).all() for f in merged.frames())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9,DRONE,1,2,5,4\n", ":2: frame 9 is past the end of the video"),
        ("0,DRONE,1,two,5,4\n", ":2: field 'y' is not a number"),
        ("0,DRONE,1,2,5,4\n0,,1,2,5,4\n", ":3: empty 'label' field"),
        ("0,DRONE,30,2,25,4\n", ":2: box x=30 y=2 w=25 h=4 lies outside the 40x32 frame"),
        ("0,DRONE,1,2,-5,4\n", ":2: box width/height must be positive"),
    ],
)
def test_bad_label_rows_name_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    root = _folder(tmp_path, {"IR_DRONE_001": text})
    with pytest.raises(InputError, match=expected) as info:
        read_dataset(root)
    assert "IR_DRONE_001_LABELS.csv" in str(info.value)


def test_unknown_label_missing_csv_and_unknown_clip(tmp_path: Path) -> None:
    root = _folder(tmp_path, GOOD, CLIPS)
    with pytest.raises(InputError, match=r"IR_BIRD_001_LABELS.csv:2: unknown label 'bird'"):
        read_dataset(root, classes="drone,helicopter")
    with pytest.raises(InputError, match="no clip named 'IR_PLANE_9'.*splits in clips.csv"):
        read_dataset(root, select="IR_PLANE_9")
    _video(tmp_path / "videos" / "IR_DRONE_002.mp4")
    with pytest.raises(InputError, match="IR_DRONE_002.mp4: no label CSV"):
        read_dataset(root)
    listed = tmp_path / "lists" / "mine.txt"
    listed.parent.mkdir()
    listed.write_text("IR_DRONE_001\n\nIR_NOPE_007\n")
    with pytest.raises(InputError, match=r"mine.txt:3: no clip named 'IR_NOPE_007'"):
        read_dataset(root, select=str(listed))
    (tmp_path / "clips.csv").write_text(CLIPS + "IR_GONE_001,drone,close,val\n")
    with pytest.raises(InputError, match="clip 'IR_GONE_001' has no video"):
        read_dataset(root, select="IR_DRONE_001")


@pytest.mark.slow
def test_cli_error_is_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = _folder(tmp_path, {"IR_DRONE_001": "0,DRONE,1,x,5,4\n"})
    result = subprocess.run(
        [sys.executable, "-m", "mistd.cli", "data", "info", str(root)],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "IR_DRONE_001_LABELS.csv:2: field 'y' is not a number" in result.stderr + result.stdout


def test_decoded_frame_cache_matches_decoder_and_invalidates(tmp_path: Path, monkeypatch) -> None:
    from mistd.data import frame_cache
    from mistd.data.readers.frames import load_frame

    monkeypatch.setenv("MISTD_CACHE_DIR", str(tmp_path / "cache"))
    root = _folder(tmp_path, GOOD)
    data = read_dataset(root)
    for record in data.sequences[0].frames:
        direct, _ = load_frame(record)
        cached, _ = load_frame(record, decoded_cache=True)
        np.testing.assert_array_equal(direct, cached)
    video = data.sequences[0].frames[0].video
    first = frame_cache.cache_path(video)
    assert first.is_file()
    _video(video, frames=4)  # the source changes: a new entry, the stale one removed
    frame_cache._OPEN.clear()
    assert frame_cache.decoded_frames(video).shape[0] == 4
    assert not first.is_file() and frame_cache.cache_path(video).is_file()


def test_real_drone_ir_split(shared_dir: Path) -> None:
    root = shared_dir / "data" / "real" / "drone_ir"
    val = read_dataset(root, select="val")
    assert len(val.sequences) == 57
    assert val.class_names == ["airplane", "bird", "drone", "helicopter"]
    assert {s.attributes["distance_bin"] for s in val.sequences} == {"close", "medium", "distant"}
    assert all(f.width == 320 and f.height == 256 for f in val.sequences[0].frames)
