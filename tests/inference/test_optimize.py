"""Inference rewrites (`mistd.inference.optimize`): folded BatchNorm and channels-last layout keep
every zoo model's outputs; bf16 runs the clip-mode (non-streaming) path too."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from mistd.inference.optimize import fold_batch_norms, has_cpp_compiler, set_channels_last
from mistd.models.zoo import ZOO, build_model


def with_trained_statistics(model: nn.Module) -> nn.Module:
    """Random BatchNorm statistics and affine parameters (a fresh model's are the identity, which
    a wrong fold would not show)."""
    generator = torch.Generator().manual_seed(1)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.running_mean.copy_(torch.randn(c, generator=generator) * 0.5)
            module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(c, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(c, generator=generator) * 0.2)
    return model.eval()


@pytest.mark.parametrize("name", ["yolox-s", "mf-baseline", "mf-residual", "chal", "tinyseg"])
def test_folded_channels_last_model_equals_the_original(name):
    torch.manual_seed(0)
    model, cfg = build_model(name, ZOO[name][0].tiny_overrides())
    model = with_trained_statistics(model)
    batch_norms = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    fast = set_channels_last(fold_batch_norms(copy.deepcopy(model)))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in fast.modules()) < batch_norms / 4
    clip = torch.rand(1, cfg.num_frames, 3, 64, 96)
    with torch.no_grad():
        expected, got = model(clip), fast(clip)
    for want, have in zip(
        expected if isinstance(expected, list) else [expected],
        got if isinstance(got, list) else [got],
        strict=True,
    ):
        torch.testing.assert_close(have, want, rtol=1e-4, atol=1e-4)


def test_fold_refuses_a_training_model():
    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batch_norms(model.train())


def test_predictor_folds_only_the_models_it_builds(tmp_path):
    """Weights loaded by name or path are folded; a module the caller built stays as it is."""
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor

    model, cfg = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    clip_detector = ClipDetector(model, num_frames=cfg.num_frames, input_size=(64, 64))
    Predictor(clip_detector)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) > 0


def test_bf16_runs_a_clip_mode_model_near_fp32():
    """tinyseg (no streaming) under bf16 autocast: its probability maps near fp32's, detections
    decoded from fp32 maps."""
    from mistd.inference.detector import ClipDetector

    torch.manual_seed(0)
    model, cfg = build_model("tinyseg", ZOO["tinyseg"][0].tiny_overrides())
    model = with_trained_statistics(model)
    clip = torch.rand(1, cfg.num_frames, 3, 64, 96)
    with torch.no_grad():
        fp32 = model.blob_maps(model(clip))[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(clip)
        bf16 = model.blob_maps(logits.float())[0]
    assert logits.dtype == torch.bfloat16  # autocast did run the convolutions in bf16
    assert (bf16 - fp32).abs().max() < 0.05
    frames = np.full((1, 64, 96), 40, np.uint8)
    frames[0, 30:33, 50:53] = 250
    detector = ClipDetector(model, num_frames=cfg.num_frames, input_size=(64, 96), precision="bf16")
    detections = detector.detect(frames, 8)
    assert detections.boxes.dtype == detections.scores.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        ClipDetector(model, num_frames=1, input_size=(64, 64), precision="fp16")


def test_predictor_runs_shipped_tinyseg_in_bf16_folded_and_channels_last():
    """Weights the `Predictor` loads itself: BatchNorm folded, convolutions channels-last on the
    CPU; bf16 accepted for a model that does not stream."""
    from mistd.inference.predictor import Predictor

    predictor = Predictor("tinyseg-gen-s", precision="bf16")
    model = predictor.detector.model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    frame = np.full((64, 96), 40, np.uint8)
    frame[30:33, 50:53] = 250
    results = predictor(frame)
    assert results.boxes.shape[1:] == (4,) and len(results.scores) == len(results.boxes)


def test_streaming_predictor_runs_its_clip_mode_windows_at_its_precision():
    """The sampled evaluation scores windows in clip mode (`detect_clips`): at the streaming
    predictor's precision, not fp32 behind its back."""
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor

    model, cfg = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    clip_detector = ClipDetector(model, num_frames=cfg.num_frames, input_size=(64, 64))
    predictor = Predictor(clip_detector, precision="bf16")
    assert predictor.detector.stream and clip_detector.precision == "bf16"


@pytest.mark.slow
@pytest.mark.skipif(not has_cpp_compiler(), reason="torch.compile on the CPU needs a C++ compiler")
@pytest.mark.parametrize("name", ["yolox-s", "chal"])
def test_compiled_streaming_equals_eager(name):
    from mistd.inference.video_predictor import VideoPredictor

    torch.manual_seed(0)
    model, cfg = build_model(name, ZOO[name][0].tiny_overrides())
    model = with_trained_statistics(model)
    eager = VideoPredictor(model, input_size=(64, 96))
    compiled = VideoPredictor(model, input_size=(64, 96), compile=True)
    rng = np.random.default_rng(0)
    for _ in range(cfg.num_frames + 1):
        frame = torch.from_numpy(rng.random((3, 64, 96), dtype=np.float32))
        want, got = eager.push_torch_raw(frame), compiled.push_torch_raw(frame)
        for w, g in zip(want, got, strict=True):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not has_cpp_compiler(), reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_convolutions_are_prepacked_with_their_activation():
    """Freezing really on: the inductor packs the convolution weights for oneDNN and fuses each
    SiLU into its convolution. (Passed as a torch.compile option it was not: no convolution was
    packed and the graph ran ~1.7x slower.)"""
    from torch._dynamo.utils import counters

    from mistd.inference.optimize import compile_for_inference

    torch.manual_seed(0)
    model, cfg = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    model = fold_batch_norms(with_trained_statistics(model).eval())
    counters.clear()
    compiled = compile_for_inference(model)
    x = torch.rand(1, cfg.num_frames, 3, 64, 96)
    with torch.inference_mode():
        got, want = compiled(x), model(x)
    convolutions = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    assert counters["inductor"]["mkldnn_conv_weight_pack_matcher_count"] == convolutions
    assert counters["inductor"]["mkldnn_unary_fusion_matcher_count"] > 0
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.skipif(not has_cpp_compiler(), reason="torch.compile on the CPU needs a C++ compiler")
def test_a_compiled_predictor_scores_sampled_windows_with_its_compiled_parts(monkeypatch):
    """The sampled evaluation (`detect_clips`, windows out of order) of a compiled predictor runs
    the compiled streaming parts on each window (the model scored is the one that runs), equal
    to eager clip mode."""
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor
    from mistd.inference.video_predictor import VideoPredictor

    torch.manual_seed(0)
    model, cfg = build_model("chal", ZOO["chal"][0].tiny_overrides())
    model = with_trained_statistics(model)

    def clip_detector(m):
        return ClipDetector(m, num_frames=cfg.num_frames, input_size=(64, 96), decode_floor=1e-8)

    eager = Predictor(clip_detector(copy.deepcopy(model)))
    compiled = Predictor(clip_detector(copy.deepcopy(model)), compile=True)
    windows = []
    original = VideoPredictor.detect_window_torch

    def counted(self, frames):
        windows.append(tuple(frames.shape))
        return original(self, frames)

    monkeypatch.setattr(VideoPredictor, "detect_window_torch", counted)
    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 255, (cfg.num_frames, 60, 90), dtype=np.uint8) for _ in range(3)]
    want = eager.detector.detect_clips(clips, [8] * 3)
    assert not windows  # eager: clip mode
    got = compiled.detector.detect_clips(clips, [8] * 3)
    assert len(windows) == 3
    for g, w in zip(got, want, strict=True):
        assert len(g) == len(w) > 0
        np.testing.assert_allclose(np.sort(g.scores), np.sort(w.scores), rtol=1e-3)


def test_compile_is_refused_where_it_cannot_apply(tmp_path):
    from mistd.errors import InputError
    from mistd.inference.predictor import Predictor
    from mistd.inference.video_predictor import VideoPredictor

    with pytest.raises(InputError, match="runs in clip mode"):
        Predictor("tinyseg-gen-s", compile=True)
    with pytest.raises(InputError, match="not to tophat"):
        Predictor("tophat", compile=True)
    graph = tmp_path / "model.onnx"
    graph.write_bytes(b"")
    with pytest.raises(InputError, match="not to an .onnx graph"):
        Predictor(str(graph), compile=True)
    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    with pytest.raises(ValueError, match="not to given parts"):
        VideoPredictor(model.eval(), input_size=(64, 64), parts=(model, model), compile=True)


def test_compile_without_a_cpp_compiler_is_refused_up_front(monkeypatch):
    import shutil

    from mistd.errors import InputError
    from mistd.inference.optimize import compile_for_inference

    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    model, _ = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    with pytest.raises(InputError, match="C\\+\\+ compiler"):
        compile_for_inference(model.eval())


def test_the_allocator_keeps_freed_memory_unless_refused(monkeypatch):
    """The torch Predictor on the CPU has glibc keep freed memory (no page faults on each frame's
    fresh tensors); `MISTD_RETAIN_MEMORY=0` leaves the allocator alone."""
    import platform

    from mistd.inference import allocator
    from mistd.inference.detector import ClipDetector
    from mistd.inference.predictor import Predictor

    monkeypatch.setattr(allocator, "_retained", None)
    monkeypatch.setenv("MISTD_RETAIN_MEMORY", "0")
    assert allocator.retain_freed_memory() is False
    monkeypatch.setattr(allocator, "_retained", None)
    monkeypatch.delenv("MISTD_RETAIN_MEMORY")
    model, cfg = build_model("yolox-s", ZOO["yolox-s"][0].tiny_overrides())
    Predictor(ClipDetector(model, num_frames=cfg.num_frames, input_size=(64, 64)))
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert allocator._retained is glibc
