"""CLI commands: `mistd data ...` (info, convert, synth)."""

from __future__ import annotations

from pathlib import Path

import typer

data_app = typer.Typer(
    help="Inspect, convert and generate data sets.", no_args_is_help=True, rich_markup_mode=None
)

FORMAT_HELP = "auto, uestc, coco, masks, anti-uav, video or images (default: detect)."


@data_app.command("info")
def info(
    path: Path = typer.Argument(
        ..., help="Index txt, COCO json, track txt/json, video, or data set folder."
    ),
    root: Path | None = typer.Option(
        None, "--root", help="Folder the index's image paths are relative to (remaps them)."
    ),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    select: str | None = typer.Option(
        None, "--select", help="Only these sequences: a split of clips.csv, names, or a .txt list."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="'target' merges all classes into one (class-agnostic)."
    ),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the summary as JSON."),
) -> None:
    """Summarise a data set: sequences, frames, sizes, bit depth, targets, box sizes.

    \b
    Examples:
      mistd data info ../DAUB/coco_val_DAUB.txt --root ../DAUB
      mistd data info ../DAUB/instances_test2017.json
      mistd data info anti_uav/4.avi --json info.json
      mistd data info data/synth
      mistd data info drone_ir --select val          # videos + label CSVs, the val split
    """
    from mistd.data.info import print_summary, summarize
    from mistd.data.readers import read_dataset
    from mistd.io import write_json_atomic

    summary = summarize(
        read_dataset(path, format=format, root=root, select=select, classes=classes)
    )
    print_summary(summary)
    if json_out is not None:
        write_json_atomic(json_out, summary)
        typer.echo(f"summary written to {json_out}")


@data_app.command("convert")
def convert(
    source: Path = typer.Argument(..., help="Any data set `mistd data info` can read."),
    out: Path = typer.Option(..., "--out", help="Output folder (mistd layout)."),
    root: Path | None = typer.Option(
        None, "--root", help="Folder the index's image paths are relative to (remaps them)."
    ),
    format: str = typer.Option("auto", "--format", help=FORMAT_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out."),
    max_frames: int | None = typer.Option(
        None, "--max-frames", help="Keep only the first N frames of each sequence."
    ),
    select: str | None = typer.Option(
        None, "--select", help="Only these sequences: a split of clips.csv, names, or a .txt list."
    ),
    classes: str | None = typer.Option(
        None, "--classes", help="'target' merges all classes into one (class-agnostic)."
    ),
) -> None:
    """Convert a data set to the mistd layout: images/<seq>/<k>.png + coco.json + uestc.txt.

    \b
    Examples:
      mistd data convert anti_uav/4.avi --out data/antiuav4
      mistd data convert ../DAUB/coco_val_DAUB.txt --root ../DAUB --out data/daub_test
      mistd data convert sirst_v1 --out data/sirst --overwrite
    """
    from mistd.data.convert import convert_dataset
    from mistd.data.info import print_summary, summarize
    from mistd.data.readers import read_dataset
    from mistd.io import check_disjoint

    check_disjoint(out, [source])
    dataset = read_dataset(source, format=format, root=root, select=select, classes=classes)
    written = convert_dataset(dataset, out, overwrite=overwrite, max_frames=max_frames)
    print_summary(summarize(read_dataset(written)))
    typer.echo(f"written to {written}")


def register(app: typer.Typer) -> None:
    """Add `mistd data ...` to `app`."""
    from mistd.commands import synth  # noqa: F401  (registers `data synth` on data_app)

    app.add_typer(data_app, name="data")
