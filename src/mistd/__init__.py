"""mistd: moving infrared small target detection (CHAL, BP-FPN, readers, synthetic IR video).

The library's front door (imported lazily, so `import mistd` stays fast):

    import mistd

    predictor = mistd.Predictor("yolox-ir-s")             # shipped name, checkpoint, .pth, .onnx,
    results = predictor(frame)                            # or tophat / mpcm / temporal
    results.boxes, results.scores, results.labels         # numpy, xyxy in original pixels
    for results in predictor("video.mp4"):                # file, folder, data set, webcam, RTSP
        results.save(f"out/{results.frame_index:06d}.png")

    mistd.list_models()                                   # zoo names and shipped weights
    model, cfg = mistd.build_model("mf-baseline", {"width": 0.25, "input_size": [256, 320]})
    data = mistd.read_dataset("drone_ir", select="val")  # any supported layout
    metrics, results = mistd.evaluate(predictor, data)    # streamed, official protocol
    tracker = mistd.Tracker(predictor.tracker_config())   # the model's track threshold
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Predictor": ("mistd.inference.predictor", "Predictor"),
    "Results": ("mistd.inference.results", "Results"),
    "Thresholds": ("mistd.thresholds", "Thresholds"),
    "build_model": ("mistd.models.zoo", "build_model"),
    "load_detector": ("mistd.inference.detector", "load_detector"),
    "VideoPredictor": ("mistd.inference.video_predictor", "VideoPredictor"),
    "read_dataset": ("mistd.data.readers", "read_dataset"),
    "evaluate": ("mistd.evaluation.runner", "evaluate_with_breakdown"),
    "Tracker": ("mistd.tracking", "Tracker"),
}

# old name -> new name: still importable, with a DeprecationWarning
_RENAMED = {"create_model": "build_model"}

__all__ = ["__version__", "list_models", *_EXPORTS]


def list_models() -> dict[str, list[str]]:
    """`{"zoo": model names build_model builds, "shipped": weights Predictor loads by name}`."""
    from mistd.models.zoo import ZOO
    from mistd.weights import shipped_weights

    return {"zoo": sorted(ZOO), "shipped": shipped_weights()}


def __getattr__(name: str) -> Any:
    if name in _RENAMED:
        import warnings

        new = _RENAMED[name]
        warnings.warn(f"mistd.{name} is renamed mistd.{new}", DeprecationWarning, stacklevel=2)
        name = new
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'mistd' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
