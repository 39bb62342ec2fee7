"""`mistd <command> [options] [key=value ...]`: the command-line interface.

Each command lives in `mistd/commands/<topic>.py`, which exposes `register(app)`; this file only
assembles them and turns user errors (`InputError`) into a one-line message and exit status 2.
"""

from __future__ import annotations

import sys

import typer

from mistd import __version__
from mistd.commands import data as data_commands
from mistd.commands import demo as demo_commands
from mistd.commands import detect as detect_commands
from mistd.commands import evaluate as evaluate_commands
from mistd.commands import inference as inference_commands
from mistd.commands import models as model_commands
from mistd.commands import train as train_commands
from mistd.commands import track as track_commands
from mistd.errors import InputError

HELP = """mistd: moving infrared small target detection.

\b
Examples:
  mistd demo                                           # synthetic clip: detect, video, metrics
  mistd data synth --out data/synth --preset medium    # generate a synthetic IR data set
  mistd data info coco_val_DAUB.txt --root ../DAUB     # summarise a data set
  mistd eval-dets --gt gt.json --dets dets.json        # official mAP50 / P / R / F1
  mistd detect --model temporal video.avi              # classical detector on a video
  mistd train --model mf-baseline --data data/synth train.epochs=10
  mistd detect --weights runs/train/exp/weights/best.pt video.avi
  mistd bench --model chal --size 512                  # params, GMACs, clip/stream/onnx latency
  mistd track --model temporal video.avi               # detect + track: ids, MOT txt, video
"""

app = typer.Typer(
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for module in (
    demo_commands,
    data_commands,
    evaluate_commands,
    detect_commands,
    train_commands,
    model_commands,
    inference_commands,
    track_commands,
):
    module.register(app)


@app.callback()
def root() -> None:
    """mistd: moving infrared small target detection."""


@app.command("version")
def version() -> None:
    """Print the mistd version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except InputError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
