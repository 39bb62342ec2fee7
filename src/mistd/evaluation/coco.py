"""Box metrics by the official CHAL / SSTNet / Tridos protocol (docs/design.md §5), pycocotools.

Protocol, exactly as the official evaluation computes it:

1. detections with `score >= 0.001` are kept (`decode_floor`, `mistd.thresholds.DECODE_FLOOR`);
2. class-aware NMS with IoU 0.65 — **the detector's job**: learned models apply it in
   `predict(..., nms_iou=0.65)` and classical detectors return non-overlapping component boxes,
   so this module takes detections as given (a COCO result file is scored as it is);
3. pycocotools `COCOeval` (bbox, default params: maxDets 100, all areas, 101 recall thresholds) on a
   COCO ground truth that includes frames without targets;
4. mAP50 = `stats[1]`; Recall = `eval['recall'][0, 0, 0, -1]` (IoU .5, first class, all areas,
   maxDets 100); Precision = mean of `eval['precision'][0, :int(Recall * 100), 0, 0, -1]`;
   F1 = 2PR / (P + R). Precision is undefined when Recall < 0.01 (empty slice): it is reported as 0
   with a warning, never NaN. With no ground-truth target at all, every number is 0 (warning).

Besides these, the operating-point P/R/F1 at one score threshold (`operating_point.py`) and one row
per sequence (the image's `sequence` key, else the parent folder of its `file_name`).

`COCOEvaluator` is the `reset() / process() / compute()` object the evaluation runner and the
trainer use; `evaluate_coco(gt_dict, results)` scores in-memory COCO data; `evaluate_coco_files`
scores files (user input: malformed content raises `InputError` naming the file and field).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import warnings
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from mistd.errors import InputError
from mistd.evaluation.operating_point import MatchCounts, counts_above, match_flags, score_curve
from mistd.io import write_json_atomic
from mistd.structures import Detections, FrameRecord
from mistd.thresholds import DECODE_FLOOR

NO_SEQUENCE = "(root)"
METRIC_KEYS = ("mAP50", "precision", "recall", "f1", "op_precision", "op_recall", "op_f1")


@dataclass
class PRCurve:
    """Interpolated precision at COCO's recall thresholds (IoU 0.5, first class, all areas).

    Attributes:
        recall: `[K]` recall thresholds up to the reached recall.
        precision: `[K]` interpolated precision at those recalls.
    """

    recall: np.ndarray = field(default_factory=lambda: np.zeros(0))
    precision: np.ndarray = field(default_factory=lambda: np.zeros(0))


# ----------------------------------------------------------------------------- validation


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_bbox(value: Any, where: str, name: str) -> None:
    if not (isinstance(value, list | tuple) and len(value) == 4 and all(map(_is_number, value))):
        raise InputError(
            f"{where}: 'bbox' must be 4 finite numbers [x, y, w, h], got {value!r}", name
        )


def _check_entry(entry: Any, where: str, name: str) -> None:
    """Fields an annotation and a detection share: integer `image_id` / `category_id`, a bbox."""
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected an object", name)
    for key in ("image_id", "category_id"):
        if not isinstance(entry.get(key), int):
            raise InputError(f"{where}: field '{key}' (integer) is missing", name)
    _check_bbox(entry.get("bbox"), where, name)


def validate_ground_truth(gt: Any, name: str = "ground truth") -> dict:
    """Check a COCO ground-truth dict and return a normalised deep copy.

    Missing `area` is filled with w*h, missing `iscrowd` with 0, missing `categories` from the
    annotations' category ids, missing `id`s of annotations with 1..N. Raises `InputError`.
    """
    from mistd.data.readers.coco import check_ground_truth

    check_ground_truth(gt, name)  # the same check as `mistd data info` and every reader's
    images, anns = gt["images"], gt["annotations"]
    out_images, ids = [], set()
    for i, image in enumerate(images):
        if not isinstance(image, dict) or not isinstance(image.get("id"), int):
            raise InputError(f"images[{i}]: field 'id' (integer) is missing", name)
        if image["id"] in ids:
            raise InputError(f"images[{i}]: duplicate image id {image['id']}", name)
        ids.add(image["id"])
        out_images.append(dict(image))
    out_anns = []
    for i, ann in enumerate(anns):
        where = f"annotations[{i}]"
        _check_entry(ann, where, name)
        if ann["image_id"] not in ids:
            raise InputError(f"{where}: image_id {ann['image_id']} is not in 'images'", name)
        ann = dict(ann)
        ann["bbox"] = [float(v) for v in ann["bbox"]]
        ann.setdefault("area", ann["bbox"][2] * ann["bbox"][3])
        ann.setdefault("iscrowd", 0)
        ann.setdefault("id", i + 1)
        out_anns.append(ann)
    categories = gt.get("categories")
    if categories is None:
        cat_ids = sorted({a["category_id"] for a in out_anns}) or [1]
        categories = [{"id": c, "name": f"class{c}"} for c in cat_ids]
    if not isinstance(categories, list) or not all(
        isinstance(c, dict) and isinstance(c.get("id"), int) for c in categories
    ):
        raise InputError("field 'categories' must be a list of objects with an integer 'id'", name)
    return {"images": out_images, "annotations": out_anns, "categories": copy.deepcopy(categories)}


def validate_results(dets: Any, image_ids: set[int], name: str = "detections") -> list[dict]:
    """Check a COCO result list (`image_id, category_id, bbox, score`); return a copy.

    Raises `InputError` for malformed entries and for image ids that the ground truth lacks.
    """
    if isinstance(dets, dict) and isinstance(dets.get("annotations"), list):
        dets = dets["annotations"]  # a ground-truth-shaped file with scores is accepted too
    if not isinstance(dets, list):
        raise InputError("expected a COCO result list [{image_id, category_id, bbox, score}]", name)
    out = []
    for i, det in enumerate(dets):
        where = f"entry {i}"
        _check_entry(det, where, name)
        score = det.get("score")
        if score is None:
            raise InputError(f"{where}: field 'score' (number) is missing", name)
        if not _is_number(score):
            raise InputError(f"{where}: 'score' must be a finite number, got {score!r}", name)
        if det["bbox"][2] < 0 or det["bbox"][3] < 0:
            raise InputError(
                f"{where}: 'bbox' [x, y, w, h] has a negative width or height: {det['bbox']!r}",
                name,
            )
        if det["image_id"] not in image_ids:
            raise InputError(
                f"{where}: image_id {det['image_id']} is not in the ground truth "
                "(detections and ground truth must come from the same data set)",
                name,
            )
        out.append(
            {
                "image_id": det["image_id"],
                "category_id": det["category_id"],
                "bbox": [float(v) for v in det["bbox"]],
                "score": float(det["score"]),
            }
        )
    return out


def sequence_of(image: dict) -> str:
    """An image's sequence: its `sequence` key, else the parent folder of its `file_name`."""
    if image.get("sequence") not in (None, ""):
        return str(image["sequence"])
    parent = PurePosixPath(str(image.get("file_name", "")).replace("\\", "/")).parent.as_posix()
    return NO_SEQUENCE if parent in ("", ".") else parent


# ----------------------------------------------------------------------------- core


def _coco_objects(gt: dict, results: list[dict]):
    from pycocotools.coco import COCO

    coco_gt = COCO()
    coco_gt.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt.createIndex()
        if results:
            # loadRes adds keys to each result dict (never edits a value in place): a
            # shallow copy per dict keeps the caller's list intact (deepcopy cost minutes on
            # 300k detections)
            coco_dt = coco_gt.loadRes([dict(r) for r in results])
        else:  # loadRes cannot take an empty list; an empty result set is valid
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": gt["images"],
                "categories": gt["categories"],
                "annotations": [],
            }
            coco_dt.createIndex()
    return coco_gt, coco_dt


def _official_numbers(coco_gt, coco_dt, img_ids: list[int], where: str) -> tuple[dict, PRCurve]:
    """Run COCOeval on `img_ids` and read the four official numbers (see module docstring)."""
    from pycocotools.cocoeval import COCOeval

    numbers = {"mAP50": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    n_gt = len(coco_gt.getAnnIds(imgIds=img_ids)) if img_ids else 0
    if not img_ids or n_gt == 0:
        warnings.warn(f"{where}: no ground-truth target; mAP50/P/R/F1 reported as 0", stacklevel=3)
        return numbers, PRCurve()
    evaluator = COCOeval(coco_gt, coco_dt, "bbox")
    evaluator.params.imgIds = sorted(img_ids)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its own tables
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    recall = float(evaluator.eval["recall"][0, 0, 0, -1])
    numbers["mAP50"] = max(float(evaluator.stats[1]), 0.0)
    numbers["recall"] = max(recall, 0.0)
    curve = evaluator.eval["precision"][0, :, 0, 0, -1]
    n_points = int(recall * 100)
    if recall < 0:  # COCOeval's -1: the first category has no ground truth in these frames
        warnings.warn(
            f"{where}: no ground truth of category {evaluator.params.catIds[0]} in these frames; "
            "its recall and precision are reported as 0",
            stacklevel=3,
        )
    elif n_points < 1:
        warnings.warn(
            f"{where}: recall {recall:.4f} < 0.01, precision is undefined by the protocol; "
            "reported as 0",
            stacklevel=3,
        )
    else:
        numbers["precision"] = float(np.mean(curve[:n_points]))
    p, r = numbers["precision"], numbers["recall"]
    numbers["f1"] = 2 * p * r / (p + r) if p + r > 0 else 0.0
    thresholds = np.asarray(evaluator.params.recThrs)
    reached = thresholds <= recall + 1e-12
    return numbers, PRCurve(recall=thresholds[reached], precision=curve[reached].astype(float))


def _evaluate(
    gt: dict, results: list[dict], operating_threshold: float, decode_floor: float
) -> tuple[dict, PRCurve]:
    results = [r for r in results if r["score"] >= decode_floor]
    coco_gt, coco_dt = _coco_objects(gt, results)

    # per-image arrays for the operating point (xyxy boxes)
    gt_by_image: dict[int, list[dict]] = {img["id"]: [] for img in gt["images"]}
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0):
            gt_by_image[ann["image_id"]].append(ann)
    dt_by_image: dict[int, list[dict]] = {img["id"]: [] for img in gt["images"]}
    for det in results:
        dt_by_image[det["image_id"]].append(det)

    def xyxy(entries: list[dict]) -> np.ndarray:
        b = np.asarray([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4)
        return np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], axis=1)

    counts: dict[int, MatchCounts] = {}
    flags: list[tuple[np.ndarray, np.ndarray]] = []
    for image_id, gts in gt_by_image.items():
        dts = dt_by_image[image_id]
        image = (
            xyxy(gts),
            np.asarray([g["category_id"] for g in gts]),
            xyxy(dts),
            np.asarray([d["score"] for d in dts], dtype=np.float64),
            np.asarray([d["category_id"] for d in dts]),
        )
        flags.append(match_flags(*image))  # one greedy pass: this threshold and every other
        counts[image_id] = counts_above(*flags[-1], len(gts), operating_threshold)

    def summary(img_ids: list[int], where: str) -> tuple[dict, PRCurve]:
        numbers, curve = _official_numbers(coco_gt, coco_dt, img_ids, where)
        total = MatchCounts()
        for image_id in img_ids:
            total.add(counts[image_id])
        numbers.update(total.metrics())
        numbers["n_images"] = len(img_ids)
        numbers["n_gt"] = sum(len(gt_by_image[i]) for i in img_ids)
        numbers["n_dets"] = sum(len(dt_by_image[i]) for i in img_ids)
        return numbers, curve

    all_ids = [img["id"] for img in gt["images"]]
    metrics, curve = summary(all_ids, "all frames")
    metrics["operating_threshold"] = float(operating_threshold)
    metrics["decode_floor"] = float(decode_floor)
    # the operating point at every threshold: best F1, the score reaching it, F1-vs-score curve
    metrics.update(score_curve(flags, metrics["n_gt"]))
    sequences: dict[str, list[int]] = {}
    for img in gt["images"]:
        sequences.setdefault(sequence_of(img), []).append(img["id"])
    per_sequence = {}
    with warnings.catch_warnings():
        # sequences without targets are normal; the overall warning is the one that matters
        warnings.simplefilter("ignore")
        for name, ids in sequences.items():
            per_sequence[name] = summary(ids, f"sequence {name}")[0]
    metrics["per_sequence"] = per_sequence
    return metrics, curve


def evaluate_coco(
    gt: dict,
    results: list[dict],
    *,
    operating_threshold: float = 0.5,
    decode_floor: float = DECODE_FLOOR,
    gt_name: str = "ground truth",
    results_name: str = "detections",
) -> dict:
    """Score COCO results against COCO ground truth (both in memory) by the official protocol.

    Args:
        gt: COCO ground-truth dict (images, annotations, categories); frames without targets count.
        results: COCO result list `[{image_id, category_id, bbox: xywh, score}]`, used as given
            (no NMS) apart from dropping scores below `decode_floor`.
        operating_threshold: the operating point for `op_precision/op_recall/op_f1`.
        decode_floor: detections below it are dropped first (official: 0.001).

    Returns:
        dict with `mAP50, precision, recall, f1, op_precision, op_recall, op_f1, n_images, n_gt,
        n_dets, operating_threshold, decode_floor, per_sequence: {name: {same numbers}}`.
    """
    return evaluate_coco_with_curve(
        gt,
        results,
        operating_threshold=operating_threshold,
        decode_floor=decode_floor,
        gt_name=gt_name,
        results_name=results_name,
    )[0]


def evaluate_coco_with_curve(
    gt: dict,
    results: list[dict],
    *,
    operating_threshold: float = 0.5,
    decode_floor: float = DECODE_FLOOR,
    gt_name: str = "ground truth",
    results_name: str = "detections",
) -> tuple[dict, PRCurve]:
    """`evaluate_coco` plus the PR curve (IoU 0.5) of the whole set."""
    gt = validate_ground_truth(gt, gt_name)
    results = validate_results(results, {img["id"] for img in gt["images"]}, results_name)
    known = {c["id"] for c in gt["categories"]}
    stray = sorted({r["category_id"] for r in results} - known)
    if stray:
        # a 0-based label written as category_id is the usual cause; COCOeval ignores them
        warnings.warn(
            f"{results_name}: category ids {stray} are not in the ground truth's categories "
            f"{sorted(known)}; those detections are ignored",
            stacklevel=2,
        )
    return _evaluate(gt, results, operating_threshold, decode_floor)


def _load_json(path: Path) -> Any:
    from mistd.io import read_text

    if not path.is_file():
        raise InputError("file not found", path)
    try:
        return json.loads(read_text(path, "JSON file"))
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None


def evaluate_coco_files(
    gt_path: str | Path,
    dets_path: str | Path,
    *,
    operating_threshold: float = 0.5,
    decode_floor: float = DECODE_FLOOR,
) -> tuple[dict, PRCurve]:
    """Score the COCO result file `dets_path` against `gt_path` (see `evaluate_coco`)."""
    gt_path, dets_path = Path(gt_path), Path(dets_path)
    return evaluate_coco_with_curve(
        _load_json(gt_path),
        _load_json(dets_path),
        operating_threshold=operating_threshold,
        decode_floor=decode_floor,
        gt_name=str(gt_path),
        results_name=str(dets_path),
    )


# ----------------------------------------------------------------------------- evaluator


class COCOEvaluator:
    """Accumulate (records, detections) and compute the official metrics.

    Usage (the evaluator never runs the model; `mistd.evaluation.runner` runs the loop):

        evaluator = COCOEvaluator(class_names=["target"])
        evaluator.process(records, detections)   # any number of times
        metrics = evaluator.compute()

    Args:
        class_names: class names indexed by 0-based label (COCO category id = label + 1).
        decode_floor: minimum score kept (official 0.001). NMS is the detector's job.
        operating_threshold: score threshold of the operating-point P/R/F1.
    """

    def __init__(
        self,
        class_names: SequenceABC[str] = ("target",),
        decode_floor: float = DECODE_FLOOR,
        operating_threshold: float = 0.5,
    ) -> None:
        self.class_names = list(class_names)
        self.decode_floor = float(decode_floor)
        self.operating_threshold = float(operating_threshold)
        self.reset()

    def reset(self) -> None:
        """Forget everything processed so far."""
        self._images: list[dict] = []
        self._annotations: list[dict] = []
        self._results: list[dict] = []
        self._used_ids: set[int] = set()
        self._next_id = 1
        self._curve: PRCurve | None = None

    def _image_id(self, record: FrameRecord) -> int:
        image_id = record.image_id
        if image_id is None:
            while self._next_id in self._used_ids:
                self._next_id += 1
            image_id = self._next_id
        if image_id in self._used_ids:
            raise ValueError(
                f"image id {image_id} (sequence '{record.sequence}', frame {record.index}) "
                "was already processed"
            )
        self._used_ids.add(image_id)
        return int(image_id)

    def process(
        self, records: SequenceABC[FrameRecord], detections: SequenceABC[Detections]
    ) -> None:
        """Add key frames: `records[i]` holds the ground truth of `detections[i]` (a
        `Detections` or an inference `Results`: anything with `to_coco(image_id)`)."""
        if len(records) != len(detections):
            raise ValueError(f"{len(records)} records but {len(detections)} detections")
        for record, dets in zip(records, detections, strict=True):
            image_id = self._image_id(record)
            source = record.path if record.path is not None else record.video
            self._images.append(
                {
                    "id": image_id,
                    "file_name": "" if source is None else Path(source).as_posix(),
                    "width": int(record.width or 0),
                    "height": int(record.height or 0),
                    "sequence": record.sequence,
                    "frame_index": int(record.index),
                }
            )
            boxes = np.asarray(record.boxes, dtype=np.float64).reshape(-1, 4)
            for box, label in zip(boxes, np.asarray(record.labels).reshape(-1), strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                self._annotations.append(
                    {
                        "id": len(self._annotations) + 1,
                        "image_id": image_id,
                        "category_id": int(label) + 1,
                        "bbox": [x1, y1, x2 - x1, y2 - y1],
                        "area": (x2 - x1) * (y2 - y1),
                        "iscrowd": 0,
                    }
                )
            self._results.extend(
                r for r in dets.to_coco(image_id) if r["score"] >= self.decode_floor
            )
        self._curve = None

    def gt_dict(self) -> dict:
        """The COCO ground truth built from the processed records."""
        categories = [{"id": i + 1, "name": n} for i, n in enumerate(self.class_names)]
        return {"images": self._images, "annotations": self._annotations, "categories": categories}

    @property
    def results(self) -> list[dict]:
        """The COCO result entries collected so far (scores >= `decode_floor`)."""
        return self._results

    def compute(self) -> dict:
        """Official metrics + operating point + per-sequence rows (see `evaluate_coco`)."""
        metrics, self._curve = _evaluate(
            validate_ground_truth(self.gt_dict()),
            self._results,
            self.operating_threshold,
            self.decode_floor,
        )
        return metrics

    def pr_curve(self) -> PRCurve:
        """The PR curve (IoU 0.5) of everything processed (computes if needed)."""
        if self._curve is None:
            self.compute()
        assert self._curve is not None
        return self._curve

    def write_results(self, path: str | Path) -> Path:
        """Write the COCO result list (atomically) to `path`."""
        return write_json_atomic(path, self._results, indent=None)

    def write_ground_truth(self, path: str | Path) -> Path:
        """Write the COCO ground truth built from the records (atomically) to `path`."""
        return write_json_atomic(path, self.gt_dict(), indent=None)


# ----------------------------------------------------------------------------- display


def metrics_table(metrics: dict, title: str = "Detection metrics (official protocol)"):
    """A rich Table: one row for all frames, then one per sequence."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("sequence")
    for col in ("frames", "targets", "dets"):
        table.add_column(col, justify="right")
    # metrics written before the rename (an old metrics.json) call it score_threshold
    thr = metrics.get("operating_threshold", metrics.get("score_threshold", 0.5))
    headers = ("mAP50", "P", "R", "F1", f"P@{thr:g}", f"R@{thr:g}", f"F1@{thr:g}")
    for header in headers:
        table.add_column(header, justify="right")

    def row(name: str, m: dict, style: str | None = None) -> None:
        cells = [name, str(m["n_images"]), str(m["n_gt"]), str(m["n_dets"])]
        cells += [f"{100 * m[k]:.2f}" for k in METRIC_KEYS]
        table.add_row(*cells, style=style)

    for name, m in metrics.get("per_sequence", {}).items():
        row(name, m)
    row("all", metrics, style="bold")
    return table
