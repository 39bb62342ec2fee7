"""`mistd <command> [options] [key=value ...]`: the command-line interface.

Each command lives in `mistd/commands/<topic>.py`, which exposes `register(app)`; this file only
assembles them and turns every failure a user can cause or meet into a one-line message (see
`main`).
"""

from __future__ import annotations

import errno
import os
import sys

import typer

from mistd import __version__
from mistd.commands import data as data_commands
from mistd.commands import demo as demo_commands
from mistd.commands import detect as detect_commands
from mistd.commands import evaluate as evaluate_commands
from mistd.commands import inference as inference_commands
from mistd.commands import models as model_commands
from mistd.commands import track as track_commands
from mistd.commands import train as train_commands
from mistd.errors import InputError
from mistd.io import remove_empty_run_dirs

HELP = """mistd: moving infrared small target detection.

\b
Examples:
  mistd demo                                           # real thermal clip: detect, video, metrics
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
def root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error (also: MISTD_DEBUG=1)."
    ),
) -> None:
    """mistd: moving infrared small target detection."""
    if debug:
        os.environ["MISTD_DEBUG"] = "1"


@app.command("version")
def version() -> None:
    """Print the mistd version."""
    typer.echo(__version__)


# What to do about an operating-system error, by errno (the message names the path).
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free space or write elsewhere",
    errno.EFBIG: "the file is too large for this file system or a size limit: write elsewhere",
    errno.EACCES: "no permission: choose a folder you can write to",
    errno.EPERM: "not permitted: choose a folder you can write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOTDIR: "a part of this path is a file, not a folder: choose another path",
    errno.EISDIR: "this is a folder, a file is expected here",
    errno.EEXIST: "a file of that name is in the way: choose another path",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENAMETOOLONG: "the path is too long",
}


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error: the path(s), what happened, what to do."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    where = " -> ".join(paths) + ": " if paths else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    advice = _OS_ADVICE.get(exc.errno or -1)
    return f"{where}{what}" + (f" ({advice})" if advice else "")


def main() -> None:
    """Console-script entry point.

    Every failure a user can cause or meet ends in one line on stderr and a non-zero status:
    2 for bad input (`InputError`), 1 for the operating system (unwritable or full disk, a path
    under a file, ...) and memory, 130 for Ctrl-C. `mistd --debug ...` (or MISTD_DEBUG=1) shows
    the traceback instead. Run folders this process created and left empty are removed.
    """
    try:
        app()
    except InputError as exc:
        _fail(exc, f"error: {exc}", 2)
    except OSError as exc:
        _fail(exc, f"error: {os_error_message(exc)}", 1)
    except MemoryError as exc:
        _fail(exc, OUT_OF_MEMORY, 1)
    except RuntimeError as exc:
        if not is_out_of_memory(exc):
            remove_empty_run_dirs()
            raise
        _fail(exc, OUT_OF_MEMORY, 1)
    except KeyboardInterrupt as exc:
        _fail(exc, "interrupted", 130)
    except SystemExit as exc:
        if exc.code not in (0, None):
            remove_empty_run_dirs()
        raise
    except BaseException:
        remove_empty_run_dirs()  # a bug's traceback still leaves no empty run folder
        raise


OUT_OF_MEMORY = "error: out of memory (use smaller frames, a smaller batch or fewer frames)"


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is torch's (CPU or CUDA) failure to allocate memory."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _fail(exc: BaseException, message: str, status: int) -> None:
    remove_empty_run_dirs()
    # The root callback sets MISTD_DEBUG for --debug (it runs before the command).
    if os.environ.get("MISTD_DEBUG", "") not in ("", "0") and status != 130:
        raise exc
    typer.echo(message, err=True)
    sys.exit(status)


if __name__ == "__main__":
    main()
