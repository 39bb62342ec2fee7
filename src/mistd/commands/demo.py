"""CLI command: `mistd demo` — the README's first command.

Runs on the real thermal clip shipped in the package (or `--source VIDEO`, or a generated
synthetic clip with `--synthetic`), runs every available
detector on it (the classical ones, and the shipped learned models when present), and writes an
annotated video of the best detector, a PR-curve plot of all of them and a metrics table under
`runs/demo/<name>`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from mistd.commands.options import FRAME_CHECK

DEMO_HELP = """Run the detectors on a real thermal clip (or your video) and show the results.

\b
Examples:
  mistd demo                             # the real clip shipped with mistd (a drone, 320x256)
  mistd demo --source my_video.mp4       # your own video (no ground truth: no metrics)
  mistd demo --synthetic --preset hard --frames 120    # a generated synthetic clip

Writes under runs/demo/<name>: <detector>.mp4 (annotated video of the detector with the best F1
at score 0.5), CHAL anomaly-map panels with colour bars, pr_curve.png (AP50 in the legend),
metrics.json (class-agnostic, the papers' protocol); with --synthetic also data/ (the generated
clip: frames + COCO json + UESTC txt).
"""


def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""

    @app.command("demo", help=DEMO_HELP)
    def demo(
        source: str | None = typer.Option(None, "--source", help="Your video or image folder."),
        synthetic: bool = typer.Option(
            False, "--synthetic", help="Generate a synthetic clip instead of the real one."
        ),
        preset: str = typer.Option("medium", "--preset", help="easy|medium|hard."),
        frames: int = typer.Option(80, "--frames", help="Synthetic clip length."),
        size: str = typer.Option("256x256", "--size", help="Synthetic frame size HxW."),
        seed: int = typer.Option(7, "--seed", help="Synthetic data seed."),
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Output parent folder."),
        name: str = typer.Option("exp", "--name", help="Run name (auto-incremented)."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Use at most N frames."),
        input_size: str | None = typer.Option(
            None,
            "--input-size",
            help="Trained models: HxW, 'native' (the frame size padded to x32; default) or "
            "'trained' (the size they were trained at).",
        ),
        device: str = typer.Option("cpu", "--device", help="Device of the trained models."),
        frame_check: str = FRAME_CHECK,
    ) -> None:
        from mistd.demo import run_demo

        run_demo(
            source=source,
            synthetic=synthetic,
            preset=preset,
            frames=frames,
            size=size,
            seed=seed,
            out=out,
            name=name,
            max_frames=max_frames,
            input_size=input_size,
            device=device,
            frame_check=frame_check,
        )
