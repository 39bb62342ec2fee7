"""Write a synthetic data set in the mistd layout (`mistd data synth`; see `mistd.data.synth`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from mistd.data import synth
from mistd.data.synth.background import load_backgrounds
from mistd.data.synth.config import SynthConfig, validate_config
from mistd.data.synth.generate import FrameTruth, generate_sequence, sequence_rngs
from mistd.data.writers import write_image
from mistd.errors import check_options
from mistd.io import atomic_folder
from mistd.structures import FrameDataset, FrameRecord, Sequence


def _truth_stats(truths: list[FrameTruth]) -> dict:
    scr = np.concatenate([t.scr for t in truths]) if truths else np.zeros(0)
    return {
        "frames": len(truths),
        "targets": int(sum(t.num_targets for t in truths)),
        "empty_frames": int(sum(t.num_targets == 0 for t in truths)),
        "scr_min": round(float(scr.min()), 3) if scr.size else None,
        "scr_median": round(float(np.median(scr)), 3) if scr.size else None,
        "scr_max": round(float(scr.max()), 3) if scr.size else None,
        "clutter_dominated": int(sum(int(t.clutter_dominated.sum()) for t in truths)),
        "saturated": int(sum(int(t.saturated.sum()) for t in truths)),
    }


def _readme(cfg: SynthConfig, sequences: int, seed: int) -> str:
    doc = synth.__doc__ or ""  # the box and SCR definitions, written beside the data
    boxes = doc[doc.index("Boxes.") : doc.index("Output layout")]
    return (
        f"# Synthetic infrared video (mistd, preset '{cfg.preset}', seed {seed})\n\n"
        f"{sequences} sequences x {cfg.num_frames} frames of {cfg.height}x{cfg.width}, "
        f"{cfg.bit_depth}-bit. Regenerate with:\n\n    mistd data synth --out DIR --preset "
        f"{cfg.preset} --sequences {sequences} --frames {cfg.num_frames} "
        f"--size {cfg.height}x{cfg.width} --seed {seed} --bit-depth {cfg.bit_depth}\n\n"
        "Files: images/<seq>/<k>.png, coco.json (COCO, category 1 = target), uestc.txt "
        "(UESTC index, integer boxes), synth.yaml (all parameters, SCR statistics).\n\n"
        + boxes.strip()
        + "\n"
    )


def write_synthetic_dataset(
    out_dir: str | Path,
    cfg: SynthConfig,
    sequences: int,
    seed: int,
    backgrounds: str | Path | None = None,
    overwrite: bool = False,
    preview: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> FrameDataset:
    """Generate `sequences` sequences and write them in the mistd layout (module docstring).

    The folder is written under a temporary name and renamed at the end: an interrupted run
    leaves no partial data set, and `overwrite` replaces an old one only once the new one is
    complete. Returns the data set as a `FrameDataset` whose paths point into `out_dir`.
    """
    from mistd.data.writers import write_coco_json, write_uestc_txt

    if backgrounds is None:
        validate_config(cfg)
    check_options(("--sequences", sequences, "[1, 100000]"), ("--seed", seed, "[0, 4294967295]"))
    out_dir = Path(out_dir)
    with atomic_folder(out_dir, overwrite) as tmp_dir:
        background_frames = None
        if backgrounds is not None:
            size = None if not cfg.height else (cfg.height, cfg.width)
            needed = cfg.num_frames * sequences
            background_frames, _ = load_backgrounds(backgrounds, needed, size)
            cfg = dataclasses.replace(
                cfg, height=background_frames.shape[1], width=background_frames.shape[2]
            )
            validate_config(cfg)
        seqs: list[Sequence] = []
        stats: dict[str, dict] = {}
        sheet_frames, sheet_boxes, sheet_titles = [], [], []
        for i, rng in enumerate(sequence_rngs(seed, sequences)):
            name = f"seq{i:03d}"
            background = None
            if background_frames is not None:
                background = background_frames[i * cfg.num_frames : (i + 1) * cfg.num_frames]
            frames, truths = generate_sequence(cfg, rng, background)
            folder = tmp_dir / "images" / name
            folder.mkdir(parents=True)
            records = []
            for k, (frame, truth) in enumerate(zip(frames, truths, strict=True)):
                write_image(folder / f"{k}.png", frame)
                records.append(
                    FrameRecord(
                        sequence=name,
                        index=k,
                        path=out_dir / "images" / name / f"{k}.png",
                        boxes=truth.boxes,
                        labels=truth.labels,
                        width=cfg.width,
                        height=cfg.height,
                    )
                )
            seqs.append(Sequence(name, records))
            stats[name] = _truth_stats(truths)
            if preview and len(sheet_frames) < 12:
                for k in np.linspace(0, len(frames) - 1, 3).round().astype(int):
                    sheet_frames.append(frames[k])
                    sheet_boxes.append(truths[k].boxes)
                    scr = " ".join(f"{v:.1f}" for v in truths[k].scr)
                    sheet_titles.append(f"{name} #{k}  SCR {scr}")
            if progress is not None:
                progress(i + 1, sequences)
        dataset = FrameDataset(seqs, ["target"], source=str(out_dir), format="coco")
        write_coco_json(dataset, tmp_dir / "coco.json", root=out_dir)
        write_uestc_txt(dataset, tmp_dir / "uestc.txt", root=out_dir)
        meta = {
            "generator": "mistd data synth",
            "seed": seed,
            "sequences": sequences,
            "backgrounds": None if backgrounds is None else str(backgrounds),
            "config": dataclasses.asdict(cfg),
            "stats": stats,
        }
        (tmp_dir / "synth.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
        (tmp_dir / "README.md").write_text(_readme(cfg, sequences, seed))
        if preview:
            from mistd.viz.sheet import save_contact_sheet

            save_contact_sheet(
                tmp_dir / "preview.png", sheet_frames, sheet_boxes, sheet_titles, columns=6
            )
    return dataset
