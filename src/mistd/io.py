"""Atomic file output and run-directory helpers.

Every output file is written to a temporary sibling and renamed into place, so a crash or an error
never leaves a half-written file and never destroys an earlier good one.
"""

from __future__ import annotations

import contextlib
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
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files: give the result the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
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
    candidate.mkdir(parents=True, exist_ok=True)
    return candidate


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
