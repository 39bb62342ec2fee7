"""CLI command: `mistd demo` — the README's first command.

Generates a short synthetic infrared clip (or reads `--source VIDEO`), runs every available
detector on it (the classical ones, and the shipped learned models when present), and writes an
annotated video of the best detector, a PR-curve plot of all of them and a metrics table under
`runs/demo/<name>`.
"""

from __future__ import annotations

from pathlib import Path

import typer

DEMO_HELP = """Run the detectors on a synthetic infrared clip (or your video) and show the results.

\b
Examples:
  mistd demo                             # synthetic 'medium' clip, 256x256, 80 frames
  mistd demo --preset hard --frames 120
  mistd demo --source my_video.mp4       # your own video (no ground truth: no metrics)

Writes under runs/demo/<name>: data/ (the generated clip: frames + COCO json + UESTC txt),
<detector>.mp4 (annotated video of the best detector), pr_curve.png, metrics.json.
"""


def register(app: typer.Typer) -> None:
    """Add `demo` to `app`."""

    @app.command("demo", help=DEMO_HELP)
    def demo(
        source: str | None = typer.Option(None, "--source", help="Your video or image folder."),
        preset: str = typer.Option("medium", "--preset", help="easy|medium|hard."),
        frames: int = typer.Option(80, "--frames", help="Synthetic clip length."),
        size: str = typer.Option("256x256", "--size", help="Synthetic frame size HxW."),
        seed: int = typer.Option(7, "--seed", help="Synthetic data seed."),
        out: Path = typer.Option(Path("runs/demo"), "--out", help="Output parent folder."),
        name: str = typer.Option("exp", "--name", help="Run name (auto-incremented)."),
        max_frames: int | None = typer.Option(None, "--max-frames", help="Use at most N frames."),
    ) -> None:
        from mistd.demo import run_demo

        run_demo(
            source=source,
            preset=preset,
            frames=frames,
            size=size,
            seed=seed,
            out=out,
            name=name,
            max_frames=max_frames,
        )
