"""Plots written as PNG files (matplotlib Agg backend, written atomically).

`plot_pr_curve` draws precision-recall curves (the official protocol's interpolated curve at IoU
0.5), each labelled with its AP50 in the legend; `plot_curves` draws training curves (loss, mAP,
...) from a CSV file or a dict of lists.
"""

from __future__ import annotations

import contextlib
import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mistd.errors import InputError
from mistd.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless: never open a window
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def _png_figure(
    path: str | Path, *args: Any, metadata: dict[str, str] | None = None, **kwargs: Any
) -> Iterator[tuple[Any, Any]]:
    """`plt.subplots(*args, **kwargs)` as `(fig, axes)`; when the block ends without error the
    figure is laid out and written to `path` as PNG atomically (with `metadata` as PNG text
    chunks; the block may fill the dict). The figure is closed either way."""
    plt = _pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    metadata = {} if metadata is None else metadata
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", metadata=metadata)
    finally:
        plt.close(fig)


# COCO's recall thresholds, at which the protocol's interpolated precision is read.
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def curve_ap(recall: Sequence[float], precision: Sequence[float]) -> float:
    """AP of an interpolated PR curve as COCO computes it: the mean over the 101 recall
    thresholds of the precision at the first curve point of at least that recall (0 beyond the
    curve's last recall). For a curve from `COCOEvaluator.pr_curve()` (one class) this is the
    run's mAP50."""
    recall, precision = np.asarray(recall, float), np.asarray(precision, float)
    if not recall.size:
        return 0.0
    index = np.searchsorted(recall, RECALL_THRESHOLDS - 1e-9, side="left")
    reached = index < recall.size
    values = np.zeros_like(RECALL_THRESHOLDS)
    values[reached] = precision[index[reached]]
    return float(values.mean())


def pr_curve_label(
    name: str, recall: Sequence[float], precision: Sequence[float], ap: float | None = None
) -> str:
    """The legend entry of one PR curve: `name (AP50 76.6)`, AP in percent (`ap` if given, else
    `curve_ap` of the curve); `name (no recall)` for an empty curve."""
    if ap is None and not len(recall):
        return f"{name} (no recall)"
    value = curve_ap(recall, precision) if ap is None else float(ap)
    return f"{name} (AP50 {100 * value:.1f})"


def plot_pr_curve(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    title: str = "Precision-recall (IoU 0.5)",
    ap: Mapping[str, float] | None = None,
) -> Path:
    """Write a PR-curve PNG, AP50 in the legend. `curves`: name -> (recall [K], precision [K]);
    `ap`: name -> AP50 in [0, 1] where the caller has it (else computed from the curve). The
    legend entries are also stored in the PNG's "Description" text, one per line."""
    metadata: dict[str, str] = {"Title": title}
    with _png_figure(path, figsize=(5, 4.5), dpi=120, metadata=metadata) as (fig, ax):
        labels = []
        for name, (recall, precision) in curves.items():
            recall, precision = np.asarray(recall, float), np.asarray(precision, float)
            label = pr_curve_label(name, recall, precision, (ap or {}).get(name))
            labels.append(label)
            ax.plot(recall, precision, label=label, linewidth=1.5)
        metadata["Description"] = "\n".join(labels)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if curves:
            ax.legend(loc="lower left", fontsize=8)
    return Path(path)


def _read_csv_columns(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        raise InputError("file not found", path)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames:
            raise InputError("empty CSV (expected a header row)", path)
        columns: dict[str, list[float]] = {name: [] for name in reader.fieldnames}
        for line, row in enumerate(reader, start=2):
            for name in reader.fieldnames:
                value = row.get(name)
                try:
                    columns[name].append(float(value) if value not in (None, "") else np.nan)
                except ValueError:
                    raise InputError(
                        f"column '{name}': expected a number, got {value!r}", path, line
                    ) from None
    return columns


def plot_curves(
    data: str | Path | Mapping[str, Sequence[float]],
    path: str | Path,
    x: str | None = None,
    title: str = "",
) -> Path:
    """Write one PNG with a subplot per series (loss, mAP50, ...) against `x` (e.g. "epoch").

    Args:
        data: a CSV file with a header row, or a dict column -> values.
        path: the PNG to write.
        x: the column used as x axis; default "epoch" or "step" when present, else the row index.
        title: figure title.
    """
    columns = _read_csv_columns(Path(data)) if isinstance(data, str | Path) else dict(data)
    if x is None:
        x = next((name for name in ("epoch", "step", "iter") if name in columns), None)
    xs = np.asarray(columns[x], float) if x is not None else None
    series = {k: np.asarray(v, float) for k, v in columns.items() if k != x}
    n = max(len(series), 1)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    size = (4 * cols, 3 * rows)
    with _png_figure(path, rows, cols, figsize=size, dpi=100, squeeze=False) as (fig, axes):
        for ax in axes.ravel()[len(series) :]:
            ax.axis("off")
        for ax, (name, values) in zip(axes.ravel(), series.items(), strict=False):
            xv = xs if xs is not None and len(xs) == len(values) else np.arange(len(values))
            ok = np.isfinite(values)
            ax.plot(xv[ok], values[ok], marker="." if ok.sum() < 30 else None, linewidth=1.2)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(x or "index", fontsize=8)
            ax.grid(True, alpha=0.3)
        if title:
            fig.suptitle(title)
    return Path(path)
