"""Clip sampling at sequence starts, caching, and the training set."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.data import clips as clips_module
from mistd.data.clips import ClipSampler, ClipTrainingSet, collate_clips
from mistd.data.readers import read_dataset
from mistd.data.video import VideoWriter
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _dataset(tmp_path, lengths=(3, 4), size=(20, 10)):
    import cv2

    sequences = []
    for s, n in enumerate(lengths):
        records = []
        for k in range(n):
            path = tmp_path / f"s{s}" / f"{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            # Pixel value encodes (sequence, frame) so the test can see which frame was read.
            cv2.imwrite(str(path), np.full((size[1], size[0]), 10 * s + k, np.uint8))
            boxes = np.array([[2, 2, 6, 5]], np.float32)
            records.append(
                FrameRecord(f"s{s}", k, path=path, boxes=boxes, labels=np.zeros(1, np.int64))
            )
        sequences.append(Sequence(f"s{s}", records))
    return FrameDataset(sequences)


def test_clips_repeat_earliest_frame_and_never_mix_sequences(tmp_path):
    sampler = ClipSampler(_dataset(tmp_path), num_frames=5)
    assert len(sampler) == 7
    expected = [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 2],
        [0, 0, 0, 0, 0],  # second sequence starts again at its frame 0
        [0, 0, 0, 0, 1],
        [0, 0, 0, 1, 2],
        [0, 0, 1, 2, 3],
    ]
    for i, indices in enumerate(expected):
        clip = sampler[i]
        assert clip.frame_indices == indices
        assert clip.frames.shape == (5, 10, 20) and clip.bit_depth == 8
        seq = 0 if i < 3 else 1
        assert [int(f[0, 0]) for f in clip.frames] == [10 * seq + k for k in indices]
        assert clip.key.index == indices[-1] and clip.key.sequence == f"s{seq}"
    with pytest.raises(IndexError):
        sampler[7]


def test_consecutive_clips_read_each_frame_once(tmp_path, monkeypatch):
    calls = []
    real = clips_module.load_frame
    monkeypatch.setattr(
        clips_module, "load_frame", lambda r, *a: calls.append(r.path) or real(r, *a)
    )
    sampler = ClipSampler(_dataset(tmp_path, lengths=(6,)), num_frames=3)
    for i in range(len(sampler)):
        sampler[i]
    assert len(calls) == 6 and len(set(calls)) == 6


def test_training_set_targets_in_input_pixels(tmp_path):
    train = ClipTrainingSet(_dataset(tmp_path), num_frames=2, input_size=(40, 40))
    clip, targets, meta = train[4]
    assert clip.shape == (2, 3, 40, 40) and clip.dtype == torch.float32
    # 20x10 -> scale 2, pad_y 10: box [2,2,6,5] -> [4,14,12,20] -> cx 8, cy 17, w 8, h 6.
    torch.testing.assert_close(targets, torch.tensor([[0.0, 8.0, 17.0, 8.0, 6.0]]))
    assert meta["sequence"] == "s1" and meta["index"] == 1 and meta["original_size"] == (10, 20)
    assert meta["letterbox"]["pad_y"] == 10
    batch = collate_clips([train[0], train[1], train[2]])
    assert batch[0].shape == (3, 2, 3, 40, 40) and len(batch[1]) == 3 and len(batch[2]) == 3


def test_training_set_empty_frames(tmp_path):
    ds = _dataset(tmp_path, lengths=(2,))
    ds.sequences[0].frames[1].boxes = np.zeros((0, 4), np.float32)
    ds.sequences[0].frames[1].labels = np.zeros((0,), np.int64)
    _, targets, _ = ClipTrainingSet(ds, 3, 32)[1]
    assert targets.shape == (0, 5)


def test_video_backed_clips(tmp_path):
    video = tmp_path / "v.mp4"
    with VideoWriter(video, fps=10, size=(32, 16)) as writer:
        for k in range(6):
            writer.write(np.full((16, 32, 3), 20 + 40 * k, np.uint8))
    sampler = ClipSampler(read_dataset(video), num_frames=3)
    # Frame k is flat gray 20 + 40k; reading clip 5 then clip 1 forces a backward re-read.
    levels = [[round((float(f.mean()) - 20) / 40) for f in sampler[i].frames] for i in (5, 1, 2)]
    assert levels == [[3, 4, 5], [0, 0, 1], [0, 1, 2]]


def test_causal_window_repeats_the_earliest_frame_at_a_sequence_start():
    from mistd.data.clips import causal_window

    assert causal_window(2, 5) == [0, 0, 0, 1, 2]
    assert causal_window(7, 3) == [5, 6, 7]
    assert causal_window(0, 1) == [0]
    assert causal_window(9, 3, 4) == [1, 5, 9]
    assert causal_window(5, 3, 4) == [0, 1, 5]


def test_strided_clips_take_every_stride_th_frame(tmp_path):
    from mistd.data.clips import window_span

    assert window_span(3, 4) == 9
    sampler = ClipSampler(_dataset(tmp_path, lengths=(6,)), num_frames=3, frame_stride=2)
    clip = sampler[4]
    assert [int(f[0, 0]) for f in clip.frames] == [0, 2, 4]
    assert clip.frame_indices == [0, 2, 4]
    assert sampler.positions(1)[1] == [0, 0, 1]
    with pytest.raises(ValueError, match="frame_stride"):
        ClipSampler(_dataset(tmp_path), num_frames=3, frame_stride=0)
