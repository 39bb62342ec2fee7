"""Streaming (`VideoPredictor`, per-frame feature cache) equals clip mode on the same frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mistd.data.transforms import to_model_input
from mistd.inference.detector import ClipDetector
from mistd.inference.streaming import streaming_parts
from mistd.inference.video_predictor import VideoPredictor
from mistd.models.detectors.chal_streaming import SNFPlan
from mistd.models.zoo import ZOO, build_model

SIZE = (64, 64)
NUM_SEQUENCE_FRAMES = 8


def tiny_model(name: str, num_frames: int | None = None, **extra) -> torch.nn.Module:
    """A tiny random model in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    overrides = dict(ZOO[name][0].tiny_overrides(), input_size=list(SIZE), **extra)
    if num_frames is not None:
        overrides["num_frames"] = num_frames
    model, _ = build_model(name, overrides)
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.copy_(
                torch.rand(module.running_mean.shape, generator=generator) - 0.5
            )
            module.running_var.copy_(
                torch.rand(module.running_var.shape, generator=generator) + 0.5
            )
    if name == "mf-residual":  # its last conv starts at zero: make the frames matter
        torch.nn.init.normal_(model.temporal.out.weight, std=0.1, generator=generator)
    return model.eval()


def sequence(dtype=np.uint8, shape=(48, 56)) -> np.ndarray:
    rng = np.random.default_rng(3)
    high = 255 if dtype == np.uint8 else 65535
    return rng.integers(0, high, size=(NUM_SEQUENCE_FRAMES, *shape)).astype(dtype)


def window_indices(key: int, num_frames: int) -> list[int]:
    """Clip convention: key frame last, earliest frame repeated at the sequence start."""
    return [max(0, key - (num_frames - 1) + j) for j in range(num_frames)]


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm().clamp(min=1e-12))


@pytest.mark.parametrize(
    ("name", "num_frames"),
    [("yolox-s", None), ("mf-baseline", 5), ("mf-residual", 3), ("chal", 5), ("chal", 3)],
)
def test_streaming_equals_clip_mode_over_a_sequence(name, num_frames):
    model = tiny_model(name, num_frames)
    t = model.num_frames
    frames = sequence()
    predictor = VideoPredictor(model, input_size=SIZE)
    inputs = [to_model_input(f[None], 8, SIZE)[0][0] for f in frames]
    worst = 0.0
    for key in range(NUM_SEQUENCE_FRAMES):
        streamed = predictor.push_torch_raw(inputs[key])
        clip = torch.stack([inputs[i] for i in window_indices(key, t)])[None]
        with torch.no_grad():
            expected = model(clip)
        assert len(streamed) == len(expected)
        for s, e in zip(streamed, expected, strict=True):
            assert s.shape == e.shape
            worst = max(worst, relative_error(s, e))
    assert predictor.frames_seen == NUM_SEQUENCE_FRAMES
    assert worst < 1e-4, f"{name}: worst relative error {worst:.2e}"


@pytest.mark.parametrize(("name", "stride"), [("mf-residual", 3), ("chal", 2), ("mf-baseline", 4)])
def test_strided_streaming_equals_strided_clips(name, stride):
    """`frame_stride` s: the streamed window holds (T-1)s+1 frames and the head sees every s-th,
    as `ClipSampler` spaces clips (earliest frame repeated at the start)."""
    from mistd.data.clips import causal_window

    model = tiny_model(name, 3, frame_stride=stride)
    assert model.frame_stride == stride
    frames = sequence()
    predictor = VideoPredictor(model, input_size=SIZE)
    inputs = [to_model_input(f[None], 8, SIZE)[0][0] for f in frames]
    worst = 0.0
    for key in range(NUM_SEQUENCE_FRAMES):
        streamed = predictor.push_torch_raw(inputs[key])
        positions = causal_window(key, 3, stride)
        assert positions[-1] == key and positions[1] == max(key - stride, 0)
        with torch.no_grad():
            expected = model(torch.stack([inputs[i] for i in positions])[None])
        worst = max(worst, *(relative_error(a, b) for a, b in zip(streamed, expected, strict=True)))
    assert worst < 1e-4, f"{name}: worst relative error {worst:.2e}"


@pytest.mark.parametrize("name", ["mf-baseline", "mf-residual", "chal"])
def test_push_detections_match_clip_detector(name):
    model = tiny_model(name)
    frames = sequence(np.uint16)
    # random init scores ~1e-4 (prior 0.01): keep them all
    detector = ClipDetector(model, num_frames=model.num_frames, input_size=SIZE, decode_floor=1e-8)
    predictor = VideoPredictor(model, input_size=SIZE, decode_floor=1e-8)
    for key, det in enumerate(predictor.run(frames)):
        expected = detector.detect(frames[: key + 1], 16)
        assert len(det) == len(expected) > 0
        # near-tied random-init scores may swap places: compare sorted scores, matched boxes
        np.testing.assert_allclose(
            np.sort(det.scores.numpy()), np.sort(expected.scores.numpy()), rtol=1e-4
        )
        distance = np.abs(det.boxes.numpy()[:, None] - expected.boxes.numpy()[None]).max(-1)
        assert distance.min(axis=1).max() < 1e-2
        # boxes are in original pixels (frames are 48 x 56, the input 64 x 64)
        assert det.boxes[:, 2].max() <= 56 * 1.5


@pytest.mark.parametrize(("name", "stride"), [("chal", 2), ("mf-residual", 1), ("yolox-s", 1)])
def test_a_window_out_of_order_equals_clip_mode(name, stride):
    """`detect_window` (how a compiled detector scores sampled windows): the streaming parts on
    one causal window, frames already `frame_stride` apart, equal to clip mode on it; shorter
    windows repeat the earliest frame; the stream is left reset."""
    from mistd.data.clips import causal_window

    extra = {} if name == "yolox-s" else {"frame_stride": stride}
    model = tiny_model(name, None if name == "yolox-s" else 3, **extra)
    t = model.num_frames
    frames = sequence(np.uint16)
    detector = ClipDetector(model, num_frames=t, input_size=SIZE, decode_floor=1e-8)
    predictor = VideoPredictor(model, input_size=SIZE, decode_floor=1e-8)
    predictor.push(frames[0])
    windows = [frames[causal_window(key, t, stride)] for key in (6, 1, 4)]  # out of order
    for window in [*windows, frames[2:3]]:
        got, want = predictor.detect_window(window, 16), detector.detect(window, 16)
        assert predictor.frames_seen == 0
        assert len(got) == len(want) > 0
        np.testing.assert_allclose(
            np.sort(got.scores.numpy()), np.sort(want.scores.numpy()), rtol=1e-4
        )
        distance = np.abs(got.boxes.numpy()[:, None] - want.boxes.numpy()[None]).max(-1)
        assert distance.min(axis=1).max() < 1e-2
    with pytest.raises(ValueError, match=r"\[T, H, W\]"):
        predictor.detect_window(frames[0], 16)


def test_reset_starts_a_new_sequence():
    model = tiny_model("chal", 3)
    frames = sequence()
    predictor = VideoPredictor(model, input_size=SIZE)
    inputs = [to_model_input(f[None], 8, SIZE)[0][0] for f in frames]
    for x in inputs[:5]:
        predictor.push_torch_raw(x)
    predictor.reset()
    after_reset = predictor.push_torch_raw(inputs[6])[0]
    fresh = VideoPredictor(model, input_size=SIZE).push_torch_raw(inputs[6])[0]
    assert torch.equal(after_reset, fresh)
    with torch.no_grad():
        expected = model(torch.stack([inputs[6]] * 3)[None])[0]
    assert relative_error(after_reset, expected) < 1e-4


def test_chal_without_fast_snf_and_ablations_stream_exactly():
    for overrides in ({}, {"hal": False}, {"snf": False}):
        torch.manual_seed(0)
        model, _ = build_model("chal", {**ZOO["chal"][0].tiny_overrides(), **overrides})
        model.eval()
        x = torch.randn(2, model.num_frames, 3, *SIZE)
        for fast in (True, False):
            encoder, head = streaming_parts(model, fast_snf=fast)
            with torch.no_grad():
                features = [f.unflatten(0, x.shape[:2]) for f in encoder(x.flatten(0, 1))]
                out = head(*features)[0]
                expected = model(x)[0]
            assert relative_error(out, expected) < 1e-5, (overrides, fast)


@pytest.mark.parametrize("name", ["yolox-s", "mf-baseline", "mf-residual", "chal"])
def test_streaming_parts_live_on_the_models_device(name):
    # the parts' own buffers (CHAL's SNF index and averaging tables) are built on the CPU; on a
    # CUDA model they must follow it ("meta" stands in for a GPU on a CPU-only machine)
    model = tiny_model(name).to("meta")
    for part in streaming_parts(model):
        devices = {t.device.type for t in (*part.parameters(), *part.buffers())}
        assert devices <= {"meta"}, (name, type(part).__name__, devices)


def test_snf_plan_shares_hidden_maps_inside_a_window():
    # T=5: prefix volumes [0,0,0,0,0], [0,1,1,1,1], ..., [0,1,2,3,4]
    plan = SNFPlan([[min(j, k) for j in range(5)] for k in range(5)])
    assert len(plan.h1_keys) == 16  # instead of 25 positions
    assert (-1, 0, 1) in plan.h1_keys and (3, 4, -1) in plan.h1_keys
    assert len(plan.motion_keys) == 8  # (a, a) for a < 4 and (a, a+1) for a < 4
    assert all(len(m) == 5 for m in plan.scene_members)


def test_push_rejects_bad_frames():
    predictor = VideoPredictor(tiny_model("yolox-s"), input_size=SIZE)
    with pytest.raises(ValueError, match="single-channel"):
        predictor.push(np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="frame"):
        predictor.push_torch(torch.zeros(2, 3, 64, 64))


def test_predictor_streams_like_clip_mode_and_encodes_each_frame_once():
    from mistd.inference.predictor import Predictor

    model = tiny_model("chal", 3)
    frames = sequence()
    detector = ClipDetector(model, num_frames=3, input_size=SIZE, decode_floor=1e-8)
    predictor = Predictor(detector, keep_all=True)
    runs = [[0, 1, 2, 3, 4], [0, 1], [6]]  # a new sequence, then another (a seek)
    for run in runs:
        predictor.reset()
        for position, key in enumerate(run):
            clip = frames[[run[k] for k in window_indices(position, 3)]]
            got, want = predictor.push(frames[key], 8), detector.detect(clip, 8)
            np.testing.assert_allclose(np.sort(got.scores), np.sort(want.scores.numpy()), rtol=1e-4)
        # one per-frame encoder pass per pushed frame, since the sequence's start
        assert predictor.detector.predictor.frames_seen == len(run)


def test_streamed_maps_equal_chal_predict_maps():
    from mistd.data.transforms import LetterboxInfo
    from mistd.inference.panels import map_panels

    model = tiny_model("chal", 3)
    frames = sequence()
    predictor = VideoPredictor(model, input_size=SIZE)
    inputs = [to_model_input(f[None], 8, SIZE)[0][0] for f in frames]
    for key in range(4):
        det = predictor.push_torch(inputs[key], return_maps=True)
    clip = torch.stack([inputs[i] for i in window_indices(3, 3)])[None]
    expected = model.predict(clip, return_maps=True)[0].maps
    assert set(det.maps) == set(expected) >= {"background", "anomaly", "gate"}
    for name, value in expected.items():
        assert relative_error(det.maps[name], value) < 1e-4, name
    info = LetterboxInfo.compute((48, 56), SIZE)
    panel = map_panels(np.zeros((48, 56, 3), np.uint8), det.maps, info)
    from mistd.inference.panels import COLOUR_BAR_WIDTH

    assert panel.shape == (48, 56 + 3 * (56 + COLOUR_BAR_WIDTH), 3) and panel[:, 56:].any()


def test_each_family_provides_its_own_streaming_parts():
    """`supports_streaming` follows the model class: a family that defines `streaming_parts`
    streams, one that does not is refused with its name (adding a model touches its module)."""
    from mistd.inference.streaming import supports_streaming
    from mistd.models.detectors.base import ClipDetectorModule

    for name in ZOO:
        # every YOLOX-head family streams; tinyseg (one frame, nothing to cache) runs clip mode
        model = tiny_model(name)
        assert supports_streaming(model) == hasattr(model, "head"), name

    class NoSplit(ClipDetectorModule):
        pass

    class OwnSplit(ClipDetectorModule):
        def streaming_parts(self, fast_snf: bool = True):
            return torch.nn.Identity(), torch.nn.Identity()

    assert not supports_streaming(NoSplit()) and supports_streaming(OwnSplit())
    with pytest.raises(TypeError, match="NoSplit"):
        streaming_parts(NoSplit())
    assert isinstance(streaming_parts(OwnSplit())[0], torch.nn.Identity)
