"""Track and box accuracy of the best classical and learned detectors on the real clips.

    python benchmarks/tracking_accuracy.py                  # run what is missing, print the table
    python benchmarks/tracking_accuracy.py --only tophat-anti_uav --force
    python benchmarks/tracking_accuracy.py --list           # the commands, nothing run

Each row is one `mistd track ... --no-video` run (default tracker settings), written to
`<out>/<row>/metrics.json`; rows whose metrics.json exists are not run again (`--force` reruns
them, e.g. after the classical detectors change). One run gives the track metrics (HOTA, DetA,
AssA, MOTA, IDF1, IDSW: TrackEval; SA: the Anti-UAV state accuracy, single-target sequences)
and the box mAP50 / F1 of the same detections without and with track confirmation
(`--confirm-tracks` of `mistd eval`: detections off confirmed tracks x0.1). Learned models run
class-agnostically (the data's classes merged, as the papers score), at the frame size on
Anti-UAV (`--input-size native`, as the weights' model card measures cross-data).

drone_ir: a fixed subset of val (the shared 2-core CPU cannot stream all 57 clips, 17,871
frames, for every detector): every 12th val clip of `clips.csv` in file order, 5 clips, about
1,500 frames.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

# every 12th val row of drone_ir/clips.csv (rows 0, 12, 24, 36, 48 of the 57 val clips): one
# airplane (distant), one bird (close), three drones (medium, medium, distant); no helicopter
DRONE_IR_SUBSET = "IR_AIRPLANE_003,IR_BIRD_008,IR_DRONE_013,IR_DRONE_069,IR_DRONE_153"

# row name -> (detector arguments, data label, data path under --data-root, data arguments)
ROWS: dict[str, tuple[list[str], str, str, list[str]]] = {
    "tophat-anti_uav": (["--model", "tophat"], "anti_uav/4.avi", "anti_uav/4.avi", []),
    "temporal-anti_uav": (["--model", "temporal"], "anti_uav/4.avi", "anti_uav/4.avi", []),
    "yolox-ir-s-anti_uav": (
        ["--weights", "yolox-ir-s", "--input-size", "native"],
        "anti_uav/4.avi",
        "anti_uav/4.avi",
        [],
    ),
    "chal-ir-s-anti_uav": (
        ["--weights", "chal-ir-s", "--input-size", "native"],
        "anti_uav/4.avi",
        "anti_uav/4.avi",
        [],
    ),
    "tophat-drone_ir": (
        ["--model", "tophat"],
        "drone_ir val, 5 clips",
        "drone_ir",
        ["--select", DRONE_IR_SUBSET],
    ),
    "temporal-drone_ir": (
        ["--model", "temporal"],
        "drone_ir val, 5 clips",
        "drone_ir",
        ["--select", DRONE_IR_SUBSET],
    ),
    "yolox-ir-s-drone_ir": (
        ["--weights", "yolox-ir-s"],
        "drone_ir val, 5 clips",
        "drone_ir",
        ["--select", DRONE_IR_SUBSET],
    ),
}


def command(row: str, data_root: str, out: Path) -> list[str]:
    """The `mistd track` command line of `row`."""
    detector, _, data, data_args = ROWS[row]
    return [
        "mistd",
        "track",
        *detector,
        f"{data_root.rstrip('/')}/{data}",
        *data_args,
        "--no-video",
        "--out",
        str(out),
        "--name",
        row,
    ]


def short_command(row: str, data_root: str) -> str:
    """`command` without the output options and with the subset spelled `$SUBSET`."""
    text = shlex.join(command(row, data_root, Path("x"))[:-4])
    return text.replace(DRONE_IR_SUBSET, "$SUBSET")


def run(row: str, data_root: str, out: Path, force: bool) -> None:
    folder = out / row
    if (folder / "metrics.json").is_file() and not force:
        return
    if folder.exists():  # a failed or forced run: `mistd track` would write <row>2 beside it
        shutil.rmtree(folder)
    cmd = command(row, data_root, out)
    print(f"[{row}] {shlex.join(cmd)}", flush=True)
    start = time.perf_counter()
    log = out / f"{row}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"[{row}] failed (exit {done.returncode}); see {log}")
    (folder / "wall_s.txt").write_text(f"{wall:.1f}\n")
    print(f"[{row}] {wall / 60:.1f} min", flush=True)


def table(rows: list[str], data_root: str, out: Path) -> str:
    """Markdown table of the finished rows, then their commands."""
    head = (
        "| detector | data | frames | HOTA | DetA | AssA | MOTA | IDF1 | IDSW | SA "
        "| box mAP50 raw / confirmed | best F1 raw / confirmed | F1@0.5 raw / confirmed "
        "| wall min |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    commands = []
    for row in rows:
        path = out / row / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        t = (m.get("trackeval") or {}).get("all", {})
        sa = m["state_accuracy"].get("all")
        raw, conf = m["boxes"]["raw"], m["boxes"]["track_confirmed"]
        wall = out / row / "wall_s.txt"
        minutes = f"{float(wall.read_text()) / 60:.0f}" if wall.is_file() else "-"

        def pct(v):
            return "-" if v is None else f"{100 * v:.1f}"

        detector = ROWS[row][0][1]
        lines.append(
            f"| {detector} | {ROWS[row][1]} | {m['frames']} | {pct(t.get('HOTA'))} "
            f"| {pct(t.get('DetA'))} | {pct(t.get('AssA'))} | {pct(t.get('MOTA'))} "
            f"| {pct(t.get('IDF1'))} | {int(t['IDSW']) if 'IDSW' in t else '-'} | {pct(sa)} "
            f"| {pct(raw['mAP50'])} / {pct(conf['mAP50'])} | {pct(raw['f1'])} / {pct(conf['f1'])} "
            f"| {pct(raw['op_f1'])} / {pct(conf['op_f1'])} | {minutes} |"
        )
        commands.append(f"{row}: {short_command(row, data_root)}")
    return "\n".join([*lines, "", f"SUBSET={DRONE_IR_SUBSET}", *commands])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default="../shared/data/real")
    parser.add_argument("--out", type=Path, default=Path("runs/tracking_accuracy"))
    parser.add_argument("--only", nargs="*", choices=sorted(ROWS), default=None)
    parser.add_argument("--force", action="store_true", help="rerun rows that have results")
    parser.add_argument("--list", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--table", action="store_true", help="print the table, run nothing")
    args = parser.parse_args()
    rows = args.only or list(ROWS)
    if args.list:
        for row in rows:
            print(shlex.join(command(row, args.data_root, args.out)))
        return
    if not args.table:
        for row in rows:
            run(row, args.data_root, args.out, args.force)
    print(table(rows, args.data_root, args.out))


if __name__ == "__main__":
    main()
