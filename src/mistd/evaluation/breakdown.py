"""Where a detector's score comes from: class-agnostic, per-class, confusion, per-attribute rows.

The papers report ONE class ("target"): every box counts, whatever its class. Data sets with classes
(the thermal drone set: airplane, bird, drone, helicopter) are scored here both ways:

- `class_agnostic`: the official protocol with every ground-truth box and every detection relabelled
  as one class, detections then suppressed class-agnostically (NMS IoU 0.65, as the model path does
  per class), so a target detected as two classes counts once;
- `per_class`: AP50 (and the operating point) of each class alone (its ground truth, the detections
  labelled with it);
- `confusion`: at the operating threshold, each ground-truth box matched greedily (IoU >= 0.5,
  highest score first, any class) to a detection: rows = true class, columns = predicted class, plus
  `missed`; detections matched to nothing are counted per predicted class under `false alarm`;
- `by_attribute`: class-agnostic metrics of the sequences sharing a value of a sequence attribute
  (e.g. `distance_bin`: close / medium / distant).
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Sequence as SequenceABC

import numpy as np
import torch

from mistd.evaluation.coco import COCOEvaluator
from mistd.evaluation.operating_point import box_iou_xyxy
from mistd.models.ops import nms
from mistd.structures import Detections, FrameDataset, FrameRecord

AGNOSTIC_NMS_IOU = 0.65
SUMMARY_KEYS = ("mAP50", "precision", "recall", "f1", "op_precision", "op_recall", "op_f1")


def _relabelled(record: FrameRecord, keep: np.ndarray | None = None) -> FrameRecord:
    """A copy of `record` whose boxes (those in `keep`) all have label 0."""
    boxes = record.boxes if keep is None else record.boxes[keep]
    return FrameRecord(
        sequence=record.sequence,
        index=record.index,
        path=record.path,
        video=record.video,
        boxes=boxes,
        labels=np.zeros(len(boxes), np.int64),
        width=record.width,
        height=record.height,
        image_id=record.image_id,
    )


def agnostic(dets: Detections, iou: float = AGNOSTIC_NMS_IOU) -> Detections:
    """Detections as one class: labels 0, class-agnostic NMS."""
    if len(dets) == 0:
        return Detections(dets.boxes, dets.scores, torch.zeros_like(dets.labels))
    keep = nms(dets.boxes.float(), dets.scores.float(), iou)
    return Detections(dets.boxes[keep], dets.scores[keep], torch.zeros_like(dets.labels[keep]))


def _of_class(dets: Detections, label: int) -> Detections:
    mask = dets.labels == label
    return Detections(dets.boxes[mask], dets.scores[mask], torch.zeros_like(dets.labels[mask]))


def _score(
    records: SequenceABC[FrameRecord], dets: SequenceABC[Detections], operating_threshold: float
) -> dict:
    evaluator = COCOEvaluator(["target"], operating_threshold=operating_threshold)
    evaluator.process(records, dets)
    # pycocotools prints its tables; the undefined-precision warning is the main table's to give
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics = evaluator.compute()
    best = {k: metrics[k] for k in ("best_f1", "best_f1_threshold") if k in metrics}
    return (
        {k: metrics[k] for k in SUMMARY_KEYS if k in metrics}
        | best
        | {
            "frames": len(records),
            "targets": int(sum(r.num_targets for r in records)),
        }
    )


def confusion_matrix(
    records: SequenceABC[FrameRecord],
    dets: SequenceABC[Detections],
    num_classes: int,
    operating_threshold: float,
) -> np.ndarray:
    """`[C + 1, C + 1]` int64: rows true class (last row: false alarm), columns predicted class
    (last column: missed). Greedy IoU >= 0.5 matching per frame, any class, highest score first."""
    matrix = np.zeros((num_classes + 1, num_classes + 1), np.int64)
    for record, det in zip(records, dets, strict=True):
        keep = det.scores.numpy() >= operating_threshold
        boxes = det.boxes.numpy()[keep]
        labels = det.labels.numpy()[keep]
        order = np.argsort(-det.scores.numpy()[keep], kind="stable")
        gt_boxes, gt_labels = record.boxes.reshape(-1, 4), record.labels.reshape(-1)
        iou = box_iou_xyxy(boxes[order], gt_boxes) if len(gt_boxes) and len(order) else None
        taken = np.zeros(len(gt_boxes), bool)
        for rank, d in enumerate(order):
            if iou is not None:
                candidates = np.where(~taken & (iou[rank] >= 0.5))[0]
                if len(candidates):
                    g = candidates[np.argmax(iou[rank][candidates])]
                    taken[g] = True
                    matrix[gt_labels[g], labels[d]] += 1
                    continue
            matrix[num_classes, labels[d]] += 1
        for g in np.where(~taken)[0]:
            matrix[gt_labels[g], num_classes] += 1
    return matrix


def breakdown(
    dataset: FrameDataset,
    records: SequenceABC[FrameRecord],
    detections: SequenceABC[Detections],
    operating_threshold: float = 0.5,
) -> dict:
    """Class-agnostic, per-class, confusion and per-attribute metrics (see the module docstring).

    Args:
        dataset: the data set `records` come from (class names, sequence attributes).
        records, detections: key frames and their detections, in the same order.
        operating_threshold: score threshold of the operating point and the confusion table.
    Returns:
        `{"class_agnostic": {...}, "per_class": {name: {...}}, "confusion": {"classes": [...],
        "matrix": [[...]]}, "by_attribute": {attribute: {value: {...}}}}` (the last three only
        where the data has several classes / attributes).
    """
    merged_dets = [agnostic(d) for d in detections]
    merged_records = [_relabelled(r) for r in records]
    out: dict = {"class_agnostic": _score(merged_records, merged_dets, operating_threshold)}
    names = list(dataset.class_names)
    if len(names) > 1:
        out["per_class"] = {}
        for label, name in enumerate(names):
            subset = [_relabelled(r, r.labels == label) for r in records]
            if not any(r.num_targets for r in subset):
                continue
            out["per_class"][name] = _score(
                subset, [_of_class(d, label) for d in detections], operating_threshold
            )
        matrix = confusion_matrix(records, detections, len(names), operating_threshold)
        out["confusion"] = {"classes": names, "matrix": matrix.tolist()}
    attributes = {s.name: s.attributes for s in dataset.sequences}
    keys = sorted({k for a in attributes.values() for k in a if k not in ("clip", "split")})
    for key in keys:
        groups: dict[str, list[int]] = {}
        for i, record in enumerate(records):
            value = attributes.get(record.sequence, {}).get(key)
            if value:
                groups.setdefault(value, []).append(i)
        if len(groups) < 2:
            continue
        out.setdefault("by_attribute", {})[key] = {
            value: _score(
                [merged_records[i] for i in idx], [merged_dets[i] for i in idx], operating_threshold
            )
            for value, idx in sorted(groups.items())
        }
    return out


def breakdown_tables(result: dict) -> list:
    """Rich tables of a `breakdown` result (agnostic / per class / per attribute, confusion)."""
    from rich.table import Table

    tables = []
    rows = Table(title="Class-agnostic (the papers' protocol), per class and per attribute")
    for col in ("rows", "frames", "targets", "mAP50", "P", "R", "F1", "F1@op"):
        rows.add_column(col, justify="left" if col == "rows" else "right")

    def add(name: str, m: dict) -> None:
        rows.add_row(
            name,
            str(m["frames"]),
            str(m["targets"]),
            *(f"{m.get(k, 0.0):.4f}" for k in ("mAP50", "precision", "recall", "f1", "op_f1")),
        )

    add("all (class-agnostic)", result["class_agnostic"])
    for name, m in result.get("per_class", {}).items():
        add(f"class {name}", m)
    for key, groups in result.get("by_attribute", {}).items():
        for value, m in groups.items():
            add(f"{key}={value}", m)
    tables.append(rows)
    if "confusion" in result:
        names = result["confusion"]["classes"]
        table = Table(title="Confusion at the operating threshold (rows: truth, cols: predicted)")
        table.add_column("truth \\ predicted")
        for name in [*names, "missed"]:
            table.add_column(name, justify="right")
        for i, row in enumerate(result["confusion"]["matrix"]):
            label = names[i] if i < len(names) else "false alarm"
            cells = [str(v) for v in row]
            if i == len(names):
                cells[-1] = "-"
            table.add_row(label, *cells)
        tables.append(table)
    return tables
