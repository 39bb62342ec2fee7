"""Parts the format readers share: recorded-path remapping, sequence names, box checks."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from mistd.errors import InputError, short
from mistd.structures import FrameRecord, Sequence

# COCO boxes converted by other tools are floats; allow this much overshoot past the image border.
BORDER_TOLERANCE = 1e-3


def natural_key(text: str) -> list:
    """Sort key that orders the numbers in names by value (`2.png` before `10.png`)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


def siblings(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files of `folder` whose suffix is one of `suffixes`, sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes)


def unique_names(parents: list[PurePosixPath]) -> dict[PurePosixPath, str]:
    """Short, unique sequence names: the last folder name, more parts where names collide."""
    distinct = list(dict.fromkeys(parents))
    depth = dict.fromkeys(distinct, 1)
    while True:
        names: dict[str, list[PurePosixPath]] = {}
        for p in distinct:
            names.setdefault("/".join(p.parts[-depth[p] :]) or ".", []).append(p)
        clashes = [ps for ps in names.values() if len(ps) > 1]
        if not clashes:
            return {p: "/".join(p.parts[-depth[p] :]) or "." for p in distinct}
        grew = False
        for group in clashes:
            for p in group:
                if depth[p] < len(p.parts):
                    depth[p] += 1
                    grew = True
        if not grew:
            return {p: p.as_posix() for p in distinct}


def recorded_parts(text: str) -> tuple[bool, tuple[str, ...]]:
    """(is_absolute, parts) of a path written on any OS."""
    if "\\" in text and "/" not in text:
        pure = PureWindowsPath(text)
        return pure.is_absolute() or bool(pure.drive), tuple(
            p for p in pure.parts if p != pure.anchor
        )
    pure = PurePosixPath(text)
    parts = tuple(p for p in pure.parts if p != "/")
    return pure.is_absolute(), parts


class PathResolver:
    """Map paths recorded in an index file to files on this machine.

    Relative paths resolve against the first base folder under which one of them exists; if
    none does, they are remapped like absolute paths (else the first base is used). Absolute
    paths are used as they are when they exist; otherwise the shortest trailing part that exists
    under a remap root is found once (from the first path that resolves) and applied to every
    path.

    Paths never leave the data root: a relative path stays under the base folder it resolves
    against, a remapped one under its remap root, an absolute one under the base folder (with
    `--root`, the only base: under it). An existing file elsewhere is an `InputError` naming
    `source` and the entry: an untrusted index (`../../etc/x.png`, `/home/me/secret.png`) must
    not pull arbitrary files.
    """

    def __init__(
        self,
        bases: list[Path],
        remap_roots: list[Path],
        prefer_remap: bool,
        source: Path | None = None,
    ):
        self.bases = bases
        self.remap_roots = remap_roots
        self.prefer_remap = prefer_remap
        self.source = source

    def resolve(self, recorded: list[str]) -> list[Path]:
        parsed = [recorded_parts(text) for text in recorded]
        # One probe per folder keeps this cheap for indexes of many thousand lines.
        probes: dict[tuple[bool, tuple[str, ...]], tuple[str, ...]] = {}
        for is_abs, parts in parsed:
            probes.setdefault((is_abs, parts[:-1]), parts)
        rel_probes = [parts for (is_abs, _), parts in probes.items() if not is_abs]
        abs_probes = [parts for (is_abs, _), parts in probes.items() if is_abs]

        base = self.bases[0]
        rel_remap: tuple[Path, int] | None = None
        for candidate in self.bases:
            if any(candidate.joinpath(*parts).exists() for parts in rel_probes):
                base = candidate
                break
        else:
            # Relative to a folder we do not know (the CHAL txt files hold paths relative to the
            # authors' working directory, `datasets/DAUB-H/images/1/0.bmp`): remap like absolute.
            if rel_probes:
                rel_remap = self._find_remap(rel_probes)

        remap: tuple[Path, int] | None = None
        keep_absolute = False
        if abs_probes:
            as_is = any(Path("/", *parts).exists() for parts in abs_probes)
            if not self.prefer_remap and as_is:
                keep_absolute = True
            else:
                remap = self._find_remap(abs_probes)
                keep_absolute = remap is None

        out = []
        for i, (text, (is_abs, parts)) in enumerate(zip(recorded, parsed, strict=True)):
            if not is_abs and rel_remap is not None:
                root = rel_remap[0]
                out.append(root.joinpath(*parts[-rel_remap[1] :]))
            elif not is_abs:
                root = base
                out.append(base.joinpath(*parts))
            elif keep_absolute or remap is None:
                root = base
                out.append(Path(text))
            else:
                root = remap[0]
                out.append(remap[0].joinpath(*parts[-remap[1] :]))
            check_inside(out[-1], root, self.source, text, i)
        return out

    def _find_remap(self, abs_probes: list[tuple[str, ...]]) -> tuple[Path, int] | None:
        for parts in abs_probes:
            for root in self.remap_roots:
                for n in range(1, len(parts) + 1):
                    if root.joinpath(*parts[-n:]).exists():
                        return root, n
        return None


def check_inside(
    path: Path, root: Path, source: Path | None, entry: str, index: int | None = None
) -> None:
    """`InputError` if `path` exists outside folder `root` (symbolic links not followed; a path
    that does not exist reads nothing: loading it fails later, naming it)."""
    normal = Path(os.path.normpath(os.path.abspath(path)))
    folder = Path(os.path.normpath(os.path.abspath(root)))
    if normal != folder and folder not in normal.parents and os.path.lexists(normal):
        where = f"entry {index + 1} " if index is not None else ""
        raise InputError(
            f"{where}{short(entry)} lies outside the data folder {folder}: paths must stay "
            "under it (pass --root FOLDER to read files under FOLDER)",
            path=source,
        )


def check_box(
    box: list[float],
    size: tuple[int, int] | None,
    path: Path,
    line: int | None,
    where: str = "",
) -> None:
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):
        raise InputError(
            f"{where}box {_fmt_box(box)} has non-positive width or height (expected x2>x1, y2>y1)",
            path=path,
            line=line,
        )
    if size is not None:
        width, height = size
        tol = BORDER_TOLERANCE
        if x1 < -tol or y1 < -tol or x2 > width + tol or y2 > height + tol:
            raise InputError(
                f"{where}box {_fmt_box(box)} lies outside the {width}x{height} image",
                path=path,
                line=line,
            )


def _fmt_box(box: list[float]) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def sequences_from_groups(groups: dict[str, list[FrameRecord]]) -> list[Sequence]:
    """Sequences in first-seen order, frames sorted by index."""
    sequences = []
    for name, frames in groups.items():
        frames.sort(key=lambda r: r.index)
        sequences.append(Sequence(name=name, frames=frames))
    return sequences


def check_contiguous(
    frames: list[tuple[int, Path, int | None]], source: Path, sequence: str
) -> None:
    """Frame numbers of one sequence must be consecutive; `frames` = (k, file, line)."""
    frames = sorted(frames, key=lambda f: f[0])
    for (k0, file0, _), (k1, file1, line1) in zip(frames, frames[1:], strict=False):
        if k1 == k0:
            raise InputError(
                f"frame {k1} of sequence '{sequence}' appears twice ({file0} and {file1})",
                path=source,
                line=line1,
            )
        if k1 != k0 + 1:
            raise InputError(
                f"sequence '{sequence}' has a gap: frame {k0 + 1} is missing between {file0} and "
                f"{file1} (frames must be numbered consecutively)",
                path=source,
                line=line1,
            )
