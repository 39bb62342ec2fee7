"""Official-protocol box metrics: fixture reproduction, edge cases, evaluator object."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mistd.errors import InputError
from mistd.evaluation.coco import (
    COCOEvaluator,
    evaluate_coco,
    evaluate_coco_files,
    sequence_of,
)
from mistd.structures import Detections, FrameRecord

# The official-protocol fixture (a copy of ../shared/fixtures/metrics, 128 KB) lives in the
# repository so a clone without ../shared runs the protocol test.
METRICS_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "metrics"


def _gt(n_images: int, boxes_per_image: dict[int, list[list[float]]]) -> dict:
    images = [
        {"id": i, "file_name": f"seq{i % 2}/{i}.png", "width": 64, "height": 64}
        for i in range(1, n_images + 1)
    ]
    anns = []
    for image_id, boxes in boxes_per_image.items():
        for box in boxes:
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": image_id,
                    "category_id": 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "target"}]}


def _det(image_id: int, box: list[float], score: float) -> dict:
    return {"image_id": image_id, "category_id": 1, "bbox": box, "score": score}


def test_fixture_reproduced_to_1e9() -> None:
    folder = METRICS_FIXTURE
    expected = json.loads((folder / "expected.json").read_text())
    metrics, curve = evaluate_coco_files(folder / "gt.json", folder / "dets.json")
    for key in ("mAP50", "precision", "recall", "f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-9), key
    for key in ("n_images", "n_gt", "n_dets"):
        assert metrics[key] == expected[key]
    assert curve.recall.max() <= metrics["recall"] + 1e-12
    # the official precision is the mean of the curve below the reached recall
    assert np.mean(curve.precision[: int(metrics["recall"] * 100)]) == pytest.approx(
        expected["precision"], abs=1e-12
    )
    assert sum(m["n_images"] for m in metrics["per_sequence"].values()) == expected["n_images"]


def test_evaluator_reproduces_fixture() -> None:
    folder = METRICS_FIXTURE
    gt = json.loads((folder / "gt.json").read_text())
    dets = json.loads((folder / "dets.json").read_text())
    expected = json.loads((folder / "expected.json").read_text())
    evaluator = COCOEvaluator(class_names=["target"])
    records, detections = [], []
    for index, image in enumerate(gt["images"]):
        anns = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        xywh = np.asarray([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        records.append(
            FrameRecord(
                sequence=sequence_of(image),
                index=index,
                boxes=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1),
                labels=np.zeros(len(anns), dtype=np.int64),
                image_id=image["id"],
            )
        )
        mine = [d for d in dets if d["image_id"] == image["id"]]
        b = np.asarray([d["bbox"] for d in mine], dtype=np.float64).reshape(-1, 4)
        detections.append(
            Detections.from_numpy(
                np.concatenate([b[:, :2], b[:, :2] + b[:, 2:]], 1), [d["score"] for d in mine]
            )
        )
    evaluator.process(records[:100], detections[:100])
    evaluator.process(records[100:], detections[100:])
    metrics = evaluator.compute()
    # boxes went through float32 (Detections) and xyxy: agreement to float32 precision
    for key in ("mAP50", "precision", "recall", "f1"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-6), key
    assert metrics["n_dets"] == expected["n_dets"]
    assert len(evaluator.pr_curve().recall) > 0
    evaluator.reset()
    with pytest.warns(UserWarning, match="no ground-truth"):
        assert evaluator.compute()["mAP50"] == 0.0


def test_low_recall_gives_precision_zero_with_warning() -> None:
    gt = _gt(200, {i: [[10.0, 10.0, 8.0, 8.0]] for i in range(1, 201)})
    dets = [_det(1, [10.0, 10.0, 8.0, 8.0], 0.9)]  # 1 of 200 targets: recall 0.005
    with pytest.warns(UserWarning, match="precision is undefined"):
        metrics = evaluate_coco(gt, dets)
    assert metrics["recall"] == pytest.approx(0.005)
    assert metrics["precision"] == 0.0
    assert metrics["f1"] == 0.0
    assert not any(np.isnan(v) for v in metrics.values() if isinstance(v, float))


def test_empty_detections_all_zero() -> None:
    gt = _gt(3, {1: [[1.0, 1.0, 5.0, 5.0]]})
    with pytest.warns(UserWarning):
        metrics = evaluate_coco(gt, [])
    for key in ("mAP50", "precision", "recall", "f1", "op_precision", "op_recall", "op_f1"):
        assert metrics[key] == 0.0
    assert metrics["n_dets"] == 0 and metrics["n_gt"] == 1 and metrics["n_images"] == 3


def test_perfect_detections_and_decode_floor() -> None:
    gt = _gt(4, {1: [[1.0, 1.0, 5.0, 5.0]], 3: [[20.0, 20.0, 6.0, 4.0]]})
    dets = [
        _det(1, [1.0, 1.0, 5.0, 5.0], 0.9),
        _det(3, [20.0, 20.0, 6.0, 4.0], 0.8),
        _det(2, [30.0, 30.0, 5.0, 5.0], 0.0005),  # below 0.001: dropped before scoring
    ]
    metrics = evaluate_coco(gt, dets)
    assert metrics["mAP50"] == pytest.approx(1.0)
    assert metrics["precision"] == pytest.approx(1.0)
    assert metrics["recall"] == pytest.approx(1.0)
    assert metrics["n_dets"] == 2
    assert set(metrics["per_sequence"]) == {"seq0", "seq1"}
    assert metrics["per_sequence"]["seq1"]["n_gt"] == 2
    assert metrics["decode_floor"] == 0.001 and metrics["operating_threshold"] == 0.5


def test_metrics_table_reads_the_old_operating_threshold_key() -> None:
    """A metrics.json written before the rename calls the operating point `score_threshold`."""
    from mistd.evaluation.coco import metrics_table

    metrics = evaluate_coco(
        _gt(1, {1: [[1.0, 1.0, 5.0, 5.0]]}), [_det(1, [1.0, 1.0, 5.0, 5.0], 0.9)]
    )
    new = [c.header for c in metrics_table(metrics).columns]
    assert "F1@0.5" in new
    old = metrics | {"score_threshold": 0.25}
    del old["operating_threshold"]
    assert "F1@0.25" in [c.header for c in metrics_table(old).columns]


def test_sequence_of() -> None:
    assert sequence_of({"file_name": "images/test/data6/0.bmp"}) == "images/test/data6"
    assert sequence_of({"file_name": "x/0.bmp", "sequence": "s1"}) == "s1"
    assert sequence_of({"file_name": "0.bmp"}) == "(root)"


def test_unknown_image_id_names_the_file(tmp_path: Path) -> None:
    gt_path, dets_path = tmp_path / "gt.json", tmp_path / "dets.json"
    gt_path.write_text(json.dumps(_gt(2, {1: [[1.0, 1.0, 5.0, 5.0]]})))
    dets_path.write_text(json.dumps([_det(7, [1.0, 1.0, 5.0, 5.0], 0.9)]))
    with pytest.raises(InputError, match=r"dets\.json.*image_id 7"):
        evaluate_coco_files(gt_path, dets_path)


@pytest.mark.parametrize(
    ("dets", "field"),
    [
        ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3], "score": 0.5}], "bbox"),
        ([{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4]}], "score"),
        ([{"category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}], "image_id"),
        ({"not": "a list"}, "result list"),
    ],
)
def test_malformed_detections(tmp_path: Path, dets, field: str) -> None:
    gt_path, dets_path = tmp_path / "gt.json", tmp_path / "dets.json"
    gt_path.write_text(json.dumps(_gt(2, {})))
    dets_path.write_text(json.dumps(dets))
    with pytest.raises(InputError, match=rf"dets\.json.*{field}"):
        evaluate_coco_files(gt_path, dets_path)


def test_malformed_ground_truth(tmp_path: Path) -> None:
    gt_path, dets_path = tmp_path / "gt.json", tmp_path / "dets.json"
    dets_path.write_text("[]")
    gt_path.write_text(json.dumps({"annotations": []}))
    with pytest.raises(InputError, match=r"gt\.json.*images"):
        evaluate_coco_files(gt_path, dets_path)
    gt_path.write_text("{not json")
    with pytest.raises(InputError, match=r"gt\.json.*JSON"):
        evaluate_coco_files(gt_path, dets_path)
    with pytest.raises(InputError, match="not found"):
        evaluate_coco_files(tmp_path / "missing.json", dets_path)


def test_unknown_category_warns() -> None:
    gt = _gt(1, {1: [[1.0, 1.0, 5.0, 5.0]]})
    dets = [{"image_id": 1, "category_id": 0, "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.9}]
    with (
        pytest.warns(UserWarning, match="precision is undefined"),
        pytest.warns(UserWarning, match=r"category ids \[0\]"),
    ):
        metrics = evaluate_coco(gt, dets)
    assert metrics["recall"] == 0.0
