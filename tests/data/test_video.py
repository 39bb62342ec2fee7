"""Video probing, decoding and atomic writing."""

from __future__ import annotations

import numpy as np
import pytest

from mistd.data import video as video_module
from mistd.data.video import (
    VideoFrameReader,
    VideoWriter,
    iter_video_frames,
    read_video_frame,
    video_info,
)
from mistd.errors import InputError


def _write_ramp(path, frames=6, size=(48, 32)):
    width, height = size
    with VideoWriter(path, fps=10, size=size) as writer:
        for i in range(frames):
            image = np.full((height, width, 3), 30 + 30 * i, np.uint8)
            writer.write(image)
    return path


def test_anti_uav_video_info_and_frames(shared_dir):
    path = shared_dir / "data" / "real" / "anti_uav" / "4.avi"
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (501, 640, 512)
    assert info.fps == pytest.approx(25.0)
    frames = iter_video_frames(path)
    first = next(frames)
    frames.close()
    assert first.shape == (512, 640) and first.dtype == np.uint8
    assert np.array_equal(read_video_frame(path, 0), first)


def test_writer_round_trip_gray_levels(tmp_path):
    path = _write_ramp(tmp_path / "ramp.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ramp.mp4"]
    info = video_info(path)
    assert (info.frames, info.width, info.height) == (6, 48, 32)
    means = [float(f.mean()) for f in iter_video_frames(path)]
    # Lossy codec, flat frames: within a couple of gray levels of what was written.
    assert means == pytest.approx([30 + 30 * i for i in range(6)], abs=3)


def test_writer_pads_odd_sizes_and_rejects_wrong_frames(tmp_path):
    path = tmp_path / "odd.mp4"
    with VideoWriter(path, fps=5, size=(33, 17)) as writer:
        writer.write(np.zeros((17, 33), np.uint8))
        with pytest.raises(ValueError, match="does not match"):
            writer.write(np.zeros((16, 33, 3), np.uint8))
    info = video_info(path)
    assert (info.width, info.height, info.frames) == (34, 18, 1)


def test_writer_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError), VideoWriter(path, fps=5, size=(16, 16)) as writer:
        writer.write(np.zeros((16, 16, 3), np.uint8))
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_frame_reader_forward_backward_and_past_end(tmp_path):
    path = _write_ramp(tmp_path / "ramp.mp4")
    reader = VideoFrameReader(path)
    late, early = reader.read(4), reader.read(1)
    assert late.mean() > early.mean() + 60
    with pytest.raises(InputError, match="6 frames, frame 9"):
        reader.read(9)


def test_opencv_fallback(tmp_path, monkeypatch):
    path = _write_ramp(tmp_path / "ramp.mp4")
    monkeypatch.setattr(video_module, "_av_opens", lambda p: False)
    frames = list(iter_video_frames(path))
    assert len(frames) == 6 and frames[0].ndim == 2
    assert video_info(path).frames == 6


@pytest.mark.parametrize("content", [b"", b"this is not a video" * 50])
def test_corrupt_video_names_file(tmp_path, content):
    path = tmp_path / "bad.avi"
    path.write_bytes(content)
    with pytest.raises(InputError, match="bad.avi"):
        list(iter_video_frames(path))
    with pytest.raises(InputError, match="bad.avi"):
        video_info(path)


def test_missing_video(tmp_path):
    with pytest.raises(InputError, match="not found"):
        video_info(tmp_path / "nope.mp4")
