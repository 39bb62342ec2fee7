"""Atomic file output and run-directory helpers.

Every output file is written to a temporary sibling and renamed into place, so a crash or an error
never leaves a half-written file and never destroys an earlier good one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, else delete it.

    Use for writers that need a file name (cv2.imwrite, torch.save, matplotlib savefig, PyAV).
    The temporary name keeps the suffix so format detection by extension still works.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
        )
    except OSError as exc:  # name the file the user asked for, not the temporary one
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files: give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except OSError as exc:
        if exc.filename is not None or exc.errno is None:
            raise
        # A failed write() (full disk) names no file: name the one being written.
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path: str | Path, obj: Any, indent: int | None = 1) -> Path:
    """Write `obj` as JSON to `path` atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=indent))


def increment_path(base: str | Path, name: str = "exp", exist_ok: bool = False) -> Path:
    """Return `base/name`, or `base/name2`, `base/name3`, ... for the first that does not exist.

    The directory is created. With `exist_ok`, `base/name` is returned even if it exists.
    """
    base = Path(base)
    candidate = base / name
    if not exist_ok:
        n = 2
        while candidate.exists():
            candidate = base / f"{name}{n}"
            n += 1
    if not candidate.exists():
        _NEW_RUN_DIRS.append(candidate)
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


# Run folders `increment_path` created in this process: a failed command removes those it left
# empty, so a failure does not leave `exp7/` behind and shift the next run's name.
_NEW_RUN_DIRS: list[Path] = []


def remove_empty_run_dirs() -> list[Path]:
    """Delete the run folders this process created that hold no file (after a failure)."""
    removed = []
    for folder in reversed(_NEW_RUN_DIRS):
        if folder.is_dir() and not any(p.is_file() for p in folder.rglob("*")):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    _NEW_RUN_DIRS.clear()
    return removed


@contextlib.contextmanager
def atomic_folder(path: str | Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder beside `path`; on success swap it into place as `path`.

    `path` must not exist or be empty unless `overwrite` (InputError otherwise); an old folder is
    replaced only once the new one is complete, and on an error nothing at `path` changes.
    """
    from mistd.errors import InputError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError("--out exists and is not a folder", path)
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise InputError("--out is not empty (pass --overwrite to replace it)", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if not overwrite:
            # Checked again at the rename, atomically: renaming onto a folder succeeds only while
            # it is empty, so of two writers at once the later one fails instead of replacing.
            try:
                os.rename(tmp, path)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                    raise
                raise InputError(
                    "--out was filled by another process while this one was writing "
                    "(pass --overwrite to replace it)",
                    path,
                ) from None
            return
        old = None
        if path.exists():
            old = path.parent / f".{path.name}.old-{os.getpid()}"
            os.replace(path, old)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
