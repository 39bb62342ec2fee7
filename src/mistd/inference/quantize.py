"""int8 deployable graphs: onnxruntime static quantization, calibrated on real frames.

    runs, description = calibration_frames(["data/drone_ir:train", "sirst/images:train.txt"])
    quantize_int8("model.onnx", "model.int8.onnx", runs, description)

The fp32 step graph of `mistd.inference.export.export_deploy_onnx` is quantized in QDQ format
(int8 weights per output channel, symmetric; uint8 activations, asymmetric), with activation
ranges calibrated by streaming the calibration frames through the fp32 graph exactly as
`OnnxDetector` does (so the cached features of the window are real ones). Only the model's
layers are quantized: the graph's preprocessing, box decoding, top-k and NMS stay in float32, as
do the nodes named by `keep_fp32` (substrings of ONNX node names, e.g. `/head/field/` for CHAL's
neural field; `DEFAULT_KEEP_FP32` lists what measurements kept). The calibration set, the method
and the nodes kept in float32 go into the file's metadata (`mistd.calibration`).
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mistd.errors import InputError

CALIBRATION_RUN = 10  # consecutive frames per video sequence (the window sees real motion)

# Node-name substrings kept in float32 by default: the backbone's first two stages (stem and
# dark2, the highest-resolution layers). Why: the normalised input spans ~4.8 units, so one uint8
# step (0.019) is more than one grey level of a channel (1/255/0.229 = 0.017); a target a few grey
# levels above its background loses half its contrast at the first quantized layer. Measured on
# mf-baseline-ir-s (`python benchmarks/quantization.py mf-baseline-ir-s --quick --precisions
# onnx-int8 --keep-fp32 ...`, 300 calibration frames, drone_ir val sample of 114 key frames,
# fp32 61.8 mAP50): everything quantized 59.0 (entropy ranges 59.0 too), head in fp32 59.5,
# the logit convs (`_preds`) 59.9, the stem 60.7, stem + dark2 61.3. On chal-ir-s keeping the
# neural field MLP (`/head/field/field/`), its Fourier encoding or the objectness convs in fp32
# moved the best detection's score by under 0.001 (all: 0.006 on average against fp32).
DEFAULT_KEEP_FP32: tuple[str, ...] = ("/encoder/backbone/stem/", "/encoder/backbone/dark2/")


@dataclasses.dataclass(frozen=True)
class Int8Settings:
    """How one model is quantized: `quantize_int8`'s `keep_fp32` and `method`."""

    keep_fp32: tuple[str, ...] = DEFAULT_KEEP_FP32
    method: str = "minmax"


# Per-model settings, by shipped weights name, where the defaults lose accuracy (`int8_settings`).
# yolox-gen-s, mf-baseline-ir-s and yolox-ir-s keep the detection head's output concat (box offsets,
# objectness and class logits share one uint8 range there), its 1x1 logit / box convs (`_preds`)
# and its box branch (`reg_convs`) in fp32 besides the stem and dark2: for yolox-gen-s the box
# branch is what the drone_ir val sample needs, the concat and `_preds` what DAUB's 2-5 px
# targets need (why the box branch weighs more than the class branch was not isolated further).
# Measured one group at a time (`python benchmarks/quantization.py NAME --precisions onnx-int8
# --keep-fp32 ...`; minmax ranges over 300 frames of drone_ir train + SIRST-V2 train at their own
# size; drone_ir val sample of 570 key frames, the weights' frame check on):
# yolox-gen-s (fp32 53.6; DAUB data20 96.9): the defaults 45.1 (DAUB 62.6); + the concat and
# `_preds` 46.4; + the class branch instead of the box branch 47.3; + the box branch of the
# three coarse levels only 52.9; + the whole box branch (this setting) 54.1; the whole head
# 53.9. With everything else int8, on DAUB: the concat alone 86.0, + `_preds` 98.4. int8 / fp32
# time at 640x512, one thread, interleaved: defaults 0.56, this setting 0.76, whole head 0.92.
# mf-baseline-ir-s, the same rule (its head is `/head/head/`): on Anti-UAV `4.avi` (fp32 74.7)
# the defaults 73.4, this setting 74.7, the whole head 75.0; drone_ir val sample (fp32 66.6)
# the defaults 68.5, this setting 68.7; int8 / fp32 time 0.51 -> 0.64 at 640x512.
# yolox-ir-s, the same rule: `4.avi` (fp32 78.2) the defaults 77.4, this setting 78.0; val
# sample (fp32 76.6) this setting 76.4 (its speed cost not measured).
# chal-ir-s needs no entry: the defaults 67.3 on the val sample (fp32 67.6) and 74.5 on `4.avi`
# (74.5); with its head's concat, `_preds` and box branch in fp32 too 67.9 on the val sample.
# mf-residual-ir-s loses 2.9 on `4.avi` (33.4 -> 30.4) with the defaults and 2.1 / 2.2 with this
# rule / its whole head in fp32, 3.1 / 2.7 / 1.6 with its temporal branch / neck / whole
# backbone in fp32 (besides stem and dark2): no entry (the loss is spread over the network).
# tinyseg-gen-s keeps its first encoder level in fp32 (the standardised frame, where a dim target
# is a fraction of the frame's spread, quantized to uint8 is what it loses): SIRST-V2 val (fp32
# 45.7) every layer int8 44.8, this setting 45.6.
_HEAD_OUTPUTS = ("Concat", "cls_preds", "obj_preds", "reg_preds", "reg_convs")
MODEL_INT8_SETTINGS: dict[str, Int8Settings] = {
    "yolox-gen-s": Int8Settings(
        keep_fp32=(*DEFAULT_KEEP_FP32, *(f"/encoder/head/{k}" for k in _HEAD_OUTPUTS))
    ),
    "yolox-ir-s": Int8Settings(
        keep_fp32=(*DEFAULT_KEEP_FP32, *(f"/encoder/head/{k}" for k in _HEAD_OUTPUTS))
    ),
    "mf-baseline-ir-s": Int8Settings(
        keep_fp32=(*DEFAULT_KEEP_FP32, *(f"/head/head/{k}" for k in _HEAD_OUTPUTS))
    ),
    "tinyseg-gen-s": Int8Settings(keep_fp32=("/encoder.0/",)),
}


def int8_settings(weights: str | Path | None) -> tuple[str | None, Int8Settings]:
    """`(name, settings)` for weights given by shipped name or file path: the per-model entry of
    `MODEL_INT8_SETTINGS` whose name is the file's stem, else `(None, Int8Settings())`."""
    if weights is None:
        return None, Int8Settings()
    name = Path(str(weights)).name
    name = name[:-3] if name.endswith(".pt") else name
    if name in MODEL_INT8_SETTINGS:
        return name, MODEL_INT8_SETTINGS[name]
    return None, Int8Settings()


Run = list[tuple[np.ndarray, int]]  # consecutive frames of one sequence, with their bit depth


def _read_source(spec: str):
    """`PATH` or `PATH:SELECT` -> (dataset, select): `read_dataset`'s `select` for data sets
    with sequences; for a folder of single images, SELECT is a .txt of file stems to keep."""
    from mistd.data.readers import read_dataset

    path, select = spec, None
    if ":" in spec and not Path(spec).exists():
        path, select = spec.rsplit(":", 1)
    if not Path(path).exists():
        raise InputError("calibration source not found", path)
    dataset = read_dataset(path)
    if select is None:
        return dataset
    if dataset.format != "images":
        return read_dataset(path, select=select)
    candidates = [Path(select), Path(path).parent / select, Path(path).parent / "splits" / select]
    stems_file = next((c for c in candidates if c.is_file()), None)
    if stems_file is None:
        raise InputError(f"calibration: no list of image names '{select}' found", path)
    stems = {line.strip() for line in stems_file.read_text().splitlines() if line.strip()}
    for sequence in dataset.sequences:
        sequence.frames = [r for r in sequence.frames if Path(r.path).stem in stems]
    return dataset


def calibration_frames(
    sources: Sequence[str] | None, total: int = 300
) -> tuple[list[Run], dict[str, Any]]:
    """Calibration runs from data sources (`PATH` or `PATH:SELECT`, see `_read_source`), about
    `total` frames shared equally between the sources: from video sequences, runs of
    `CALIBRATION_RUN` consecutive frames (the first frames of sequences spread evenly over the
    source); from folders of single images, single frames spread evenly.

    Returns the runs and a description for the metadata (sources, frames, runs)."""
    from mistd.data.readers.frames import load_frame

    if not sources:
        raise InputError(
            "int8 needs calibration frames: --calibration PATH[:SELECT] (e.g. a training "
            "set's train split; repeatable)"
        )
    if total < 1:
        raise InputError(f"calibration frames must be >= 1, got {total}")
    runs: list[Run] = []
    used = []
    share = max(total // len(sources), 1)
    for spec in sources:
        dataset = _read_source(spec)
        single = dataset.format == "images"
        if single:
            records = [r for s in dataset.sequences for r in s.frames]
            picks = np.linspace(0, len(records) - 1, min(share, len(records))).round().astype(int)
            # each image is its own frame (sizes may differ between images)
            taken = [
                [dataclasses.replace(records[i], width=None, height=None)]
                for i in sorted(set(picks.tolist()))
            ]
        else:
            sequences = [s for s in dataset.sequences if s.frames]
            count = min(max(share // CALIBRATION_RUN, 1), len(sequences))
            picks = np.linspace(0, len(sequences) - 1, count).round().astype(int)
            taken = [sequences[i].frames[:CALIBRATION_RUN] for i in sorted(set(picks.tolist()))]
        if not taken:
            raise InputError("calibration source has no frames", spec)
        for records in taken:
            runs.append([load_frame(r) for r in records])
        used.append(
            {
                "source": spec,
                "frames": sum(len(t) for t in taken),
                "runs": len(taken),
                "kind": "single images" if single else f"runs of {CALIBRATION_RUN} frames",
            }
        )
    description = {"sources": used, "frames": sum(len(r) for r in runs)}
    return runs, description


class _StreamReader:
    """onnxruntime `CalibrationDataReader`: the feeds of the fp32 graph while it streams the
    calibration runs (computed lazily, one frame per `get_next`), each frame at the size the
    graph runs it at: its own size for a graph exported with a dynamic size, else letterboxed to
    the export size."""

    def __init__(self, fp32_path: Path, runs: list[Run]):
        from mistd.inference.predictor import OnnxDetector

        self.detector = OnnxDetector(fp32_path)
        self.runs = runs
        self._feeds = self._iterate()

    def _iterate(self) -> Iterator[dict[str, np.ndarray]]:
        runtime = self.detector.runtime
        for run in self.runs:
            self.detector.reset()
            for frame, bit_depth in run:
                recorded: list[dict[str, np.ndarray]] = []
                runtime.record = recorded
                with warnings.catch_warnings():  # a fixed-size graph letterboxes, as it will run
                    warnings.simplefilter("ignore")
                    self.detector.push(frame, bit_depth)
                runtime.record = None
                yield recorded[-1]

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:
        self._feeds = self._iterate()


# Name prefixes of a deployable graph's layers: a YOLOX-head family's encoder and head, a dense
# model's (`tinyseg`) encoder levels, decoder levels and output conv. Everything else (the
# graph's preprocessing, the frame's standardisation, decoding, sigmoids, top-k, NMS) stays fp32.
LAYER_PREFIXES = ("/encoder/", "/head/", "/encoder.", "/decoder.", "/out/")


def quantizable_nodes(model_path: str | Path, keep_fp32: Sequence[str] = ()) -> list[str]:
    """Names of the nodes to quantize: the model's layers (`LAYER_PREFIXES`), minus those
    containing a `keep_fp32` substring."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    keep_fp32 = [k for k in keep_fp32 if k]  # an empty pattern would match every node
    return [
        n.name
        for n in graph.node
        if n.name.startswith(LAYER_PREFIXES) and not any(k in n.name for k in keep_fp32)
    ]


def quantize_int8(
    fp32_path: str | Path,
    out_path: str | Path,
    runs: list[Run],
    description: dict[str, Any],
    keep_fp32: Sequence[str] = DEFAULT_KEEP_FP32,
    method: str = "minmax",
    op_types: Sequence[str] | None = None,
    settings_of: str | None = None,
) -> Path:
    """Quantize a deployable fp32 step graph to int8 (see module docstring); `out_path` may be
    `fp32_path` (replaced atomically).

    Args:
        runs, description: from `calibration_frames`.
        keep_fp32: node-name substrings left in float32.
        method: `minmax`, `percentile` (99.999th) or `entropy` activation ranges.
        op_types: onnxruntime op types to quantize (default: all it can).
        settings_of: the model whose `MODEL_INT8_SETTINGS` entry gave `keep_fp32` and `method`
            (recorded in the metadata; None: the defaults or the caller's own choice).
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from mistd.inference.onnx_runtime import read_onnx_metadata
    from mistd.io import atomic_path

    methods = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }
    if method not in methods:
        raise InputError(f"calibration method: expected one of {', '.join(methods)}, got {method}")
    fp32_path, out_path = Path(fp32_path), Path(out_path)
    meta = read_onnx_metadata(fp32_path)
    if meta.get("graph") != "step" or meta.get("precision", "fp32") != "fp32":
        raise InputError(
            "int8 quantization takes an fp32 deployable graph (mistd export)", fp32_path
        )
    reader = _StreamReader(fp32_path, runs)
    if method != "minmax":
        # onnxruntime's histogram calibration stacks every frame's tensors into one array
        size_for = reader.detector.input_size_for
        sizes = {size_for(*np.shape(frame)[:2]) for run in runs for frame, _ in run}
        if len(sizes) > 1:
            raise InputError(
                f"{method} activation ranges need calibration frames that all run at one size "
                f"(onnxruntime's histogram calibration stacks them); these run at "
                f"{', '.join(f'{h}x{w}' for h, w in sorted(sizes))}: calibrate on one source, "
                "or use minmax",
                fp32_path,
            )
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        nodes = quantizable_nodes(prepared, keep_fp32)
        if not nodes:  # onnxruntime reads an empty list as "every node"
            raise InputError(
                f"no layer left to quantize (keep_fp32 {list(keep_fp32)} covers them all, or the "
                f"graph has none named {', '.join(LAYER_PREFIXES)})",
                fp32_path,
            )
        with atomic_path(out_path) as target:
            quantize_static(
                str(prepared),
                str(target),
                reader,
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_quantize=nodes,
                op_types_to_quantize=list(op_types) if op_types else None,
                calibrate_method=methods[method],
                extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
            )
            fp32_metadata = _metadata_props(fp32_path)
            _set_metadata(
                target,
                {
                    **fp32_metadata,
                    "mistd.precision": "int8",
                    "mistd.calibration": json.dumps(
                        {
                            **description,
                            "method": f"onnxruntime static quantization, QDQ, {method} "
                            "activation ranges over the calibration frames streamed through "
                            "the fp32 graph",
                            "weights": "int8, symmetric, per output channel",
                            "activations": "uint8, asymmetric, per tensor",
                            "kept_fp32": "preprocessing, box decoding, top-k, NMS"
                            + "".join(f"; nodes containing '{k}'" for k in keep_fp32),
                            "op_types": list(op_types) if op_types else "all onnxruntime can",
                            "settings": f"per-model settings of {settings_of}"
                            if settings_of
                            else "as given (mistd.inference.quantize defaults unless chosen)",
                        }
                    ),
                },
            )
    return out_path


def _metadata_props(path: Path) -> dict[str, str]:
    import onnx

    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def _set_metadata(path: Path, values: dict[str, str]) -> None:
    """Set (or replace) metadata entries of an ONNX file in place, keeping the others."""
    import onnx

    proto = onnx.load(str(path))
    kept = {p.key: p.value for p in proto.metadata_props}
    kept.update(values)
    del proto.metadata_props[:]
    for key, value in kept.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))
