"""Plots written as PNG files (matplotlib Agg backend, written atomically).

`plot_pr_curve` draws precision-recall curves (the official protocol's interpolated curve at IoU
0.5); `plot_curves` draws training curves (loss, mAP, ...) from a CSV file or a dict of lists.
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
def _png_figure(path: str | Path, *args: Any, **kwargs: Any) -> Iterator[tuple[Any, Any]]:
    """`plt.subplots(*args, **kwargs)` as `(fig, axes)`; when the block ends without error the
    figure is laid out and written to `path` as PNG atomically. The figure is closed either way."""
    plt = _pyplot()
    fig, axes = plt.subplots(*args, **kwargs)
    try:
        yield fig, axes
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)


def plot_pr_curve(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    path: str | Path,
    title: str = "Precision-recall (IoU 0.5)",
) -> Path:
    """Write a PR-curve PNG. `curves`: label -> (recall [K], precision [K])."""
    with _png_figure(path, figsize=(5, 4.5), dpi=120) as (fig, ax):
        for label, (recall, precision) in curves.items():
            recall, precision = np.asarray(recall, float), np.asarray(precision, float)
            if recall.size:
                ax.plot(recall, precision, label=label, linewidth=1.5)
            else:
                ax.plot([], [], label=f"{label} (no recall)")
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
