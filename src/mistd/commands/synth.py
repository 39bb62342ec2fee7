"""CLI command: `mistd data synth` (registered on the `data` sub-app)."""

from __future__ import annotations

from pathlib import Path

import typer

from mistd.commands.data import data_app

SYNTH_HELP = """Generate a synthetic infrared video data set (frames + COCO json + UESTC txt).

\b
Examples:
  mistd data synth --out data/synth-medium --preset medium --sequences 8 --frames 100 --size 256x256
  mistd data synth --out data/hard16 --preset hard --bit-depth 16 --seed 3 --preview
  mistd data synth --out data/semi --backgrounds anti_uav/4.avi --frames 100 --preset medium

Presets (SCR = signal-to-clutter ratio of the target's centre pixel against a ring around it):
easy SCR 6-10, calm sky; medium SCR 3-5, clouds with bright edges, ground half of the time;
hard SCR 1.5-3, dense clutter, ground, strong jitter, sensor defects. Same seed, same bytes.
--backgrounds puts the simulated targets into real footage (its own annotated target, from the
track file beside a video, is painted out first); the footage sets the frame size unless --size
is given. --preview writes preview.png, a contact sheet of frames with their boxes.
"""


@data_app.command("synth", help=SYNTH_HELP)
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (must not exist or be empty)."),
    preset: str = typer.Option("medium", "--preset", help="easy | medium | hard."),
    sequences: int = typer.Option(4, "--sequences", help="Number of sequences."),
    frames: int = typer.Option(100, "--frames", help="Frames per sequence."),
    size: str | None = typer.Option(None, "--size", help="HxW (default 256x256)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    bit_depth: int = typer.Option(8, "--bit-depth", help="8 or 16."),
    backgrounds: str | None = typer.Option(None, "--backgrounds", help="Real footage to use."),
    preview: bool = typer.Option(False, "--preview", help="Also write preview.png."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
) -> None:
    import time

    from mistd.data.synth.config import parse_size, preset_config
    from mistd.data.synth.writer import write_synthetic_dataset

    overrides: dict = {"num_frames": frames, "bit_depth": bit_depth}
    if size is not None:
        overrides["height"], overrides["width"] = parse_size(size)
    elif backgrounds is not None:
        overrides["height"] = overrides["width"] = 0  # the footage decides
    cfg = preset_config(preset, **overrides)
    start = time.perf_counter()
    with typer.progressbar(length=sequences, label="generating") as bar:
        dataset = write_synthetic_dataset(
            out,
            cfg,
            sequences=sequences,
            seed=seed,
            backgrounds=backgrounds,
            overwrite=overwrite,
            preview=preview,
            progress=lambda done, total: bar.update(1),
        )
    seconds = time.perf_counter() - start
    n = dataset.num_frames
    targets = sum(r.num_targets for r in dataset.frames())
    typer.echo(
        f"{n} frames ({len(dataset.sequences)} sequences), {targets} targets, "
        f"{n / seconds:.0f} frames/s -> {out}"
    )
    typer.echo(f"  {out / 'coco.json'}\n  {out / 'uestc.txt'}\n  {out / 'synth.yaml'}")
    if preview:
        typer.echo(f"  {out / 'preview.png'}")
