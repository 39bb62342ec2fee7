"""Restrict a data set to some of its sequences (`mistd track --split/--sequences`)."""

from __future__ import annotations

from pathlib import Path

from mistd.errors import InputError


def select_sequences(
    dataset, source: str, split: str | None, first: int | None, merge_classes: bool = False
):
    """`dataset` restricted to a split (a `clips.csv` beside or in `source` with columns
    clip,...,split, as drone_ir has) and/or to `first` evenly spaced sequences (deterministic:
    indices round(linspace(0, n - 1, first)), so a subset spans a class-sorted list); with
    `merge_classes`, every box becomes class 0 "target"."""
    import csv

    import numpy as np

    from mistd.structures import FrameDataset

    sequences = dataset.sequences
    if split is not None:
        path = Path(source)
        candidates = [
            path / "clips.csv",
            path.parent / "clips.csv",
            path.parent.parent / "clips.csv",
        ]
        clips_csv = next((c for c in candidates if c.is_file()), None)
        if clips_csv is None:
            raise InputError("--split needs a clips.csv (clip,...,split) beside the data", source)
        with clips_csv.open() as f:
            chosen = {row["clip"] for row in csv.DictReader(f) if row.get("split") == split}
        if not chosen:
            raise InputError(f"no clip of split '{split}'", path=clips_csv)
        sequences = [s for s in sequences if s.name in chosen]
        if not sequences:
            raise InputError(
                f"no sequence of split '{split}' in the data set (names: "
                f"{[s.name for s in dataset.sequences[:3]]} ...)",
                path=clips_csv,
            )
    if first is not None and first < len(sequences):
        picks = np.round(np.linspace(0, len(sequences) - 1, max(first, 1))).astype(int)
        sequences = [sequences[i] for i in picks]
    class_names = dataset.class_names
    if merge_classes and len(class_names) > 1:
        for seq in sequences:
            for record in seq.frames:
                record.labels = np.zeros_like(record.labels)
        class_names = ["target"]
    return FrameDataset(sequences, class_names, dataset.source, dataset.format)
