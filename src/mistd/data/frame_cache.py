"""Decode a video once, read its frames fast ever after (training's random access into H.264).

`decoded_frames(video)` returns the whole video as a read-only memory-mapped `[N, H, W]` array
(uint8 or uint16), decoding it into the cache the first time. The cache file's name holds a hash
of the video's absolute path, size, modification time and content (its first and last 64 kB), so
a changed or replaced video is decoded again even when a copy restored its size and mtime (its
stale file is removed); the file is written to a temporary name and renamed, so a crashed decode
never leaves a half-written entry and concurrent workers cannot corrupt it. The temporaries of a
decode killed part way are removed by the next decode of that video; a cache file that cannot be
read (truncated, corrupt) is treated as stale: decoded again, with one warning.

The cache folder is `$MISTD_CACHE_DIR/frames`, else `$XDG_CACHE_HOME/mistd/frames`, else
`~/.cache/mistd/frames`. Uncompressed, the thermal drone train split (234 clips of 320x256) takes
about 5.7 GB; `mistd` never writes into the data set folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import warnings
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from mistd.data.video import iter_video_frames
from mistd.errors import InputError
from mistd.io import remove_stale_temporaries, temporary_prefix

_OPEN: OrderedDict[Path, np.ndarray] = OrderedDict()
_MAX_OPEN = 64
# Bytes hashed at each end of a video for its cache key.
_HASHED_BYTES = 65536
_WARNED_CORRUPT = False
_DIGESTS: dict[tuple, str] = {}


def cache_dir() -> Path:
    """The folder decoded videos are kept in (see the module docstring)."""
    if os.environ.get("MISTD_CACHE_DIR"):
        base = Path(os.environ["MISTD_CACHE_DIR"])
    elif os.environ.get("XDG_CACHE_HOME"):
        base = Path(os.environ["XDG_CACHE_HOME"]) / "mistd"
    else:
        base = Path.home() / ".cache" / "mistd"
    return base / "frames"


def cache_path(video: str | Path) -> Path:
    """Cache file of `video` for its current content (path, size, mtime and a hash of its first
    and last `_HASHED_BYTES` in the name)."""
    video = Path(video).resolve()
    stat = video.stat()
    # The content hash is read once per version of the file this process sees (a replaced file
    # has a new inode or ctime, which no copy tool can restore), not once per frame loaded.
    version = (str(video), stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)
    digest = _DIGESTS.get(version)
    if digest is None:
        key = hashlib.sha1(f"{video}|{stat.st_size}|{stat.st_mtime_ns}".encode())
        with video.open("rb") as f:
            key.update(f.read(_HASHED_BYTES))
            if stat.st_size > _HASHED_BYTES:
                f.seek(max(stat.st_size - _HASHED_BYTES, _HASHED_BYTES))
                key.update(f.read(_HASHED_BYTES))
        digest = _DIGESTS[version] = key.hexdigest()[:16]
    return cache_dir() / f"{video.stem}-{digest}.npy"


def _remove_stale(video: Path, keep: Path) -> None:
    """Delete cache entries of the same video made from an older version of it."""
    prefix = f"{video.stem}-"
    for old in keep.parent.glob(f"{prefix}*.npy"):
        if old != keep and len(old.stem) == len(keep.stem):
            with contextlib.suppress(OSError):
                old.unlink()


def _decode_into(video: Path, target: Path) -> None:
    frames = list(iter_video_frames(video))
    array = np.stack(frames)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent, target.stem)
    fd, tmp = tempfile.mkstemp(
        prefix=temporary_prefix(target.stem), suffix=".tmp", dir=target.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def decoded_frames(video: str | Path) -> np.ndarray:
    """All frames of `video` as a read-only memory-mapped `[N, H, W]` array (decoded once)."""
    video = Path(video)
    target = cache_path(video)
    cached = _OPEN.get(target)
    if cached is not None:
        _OPEN.move_to_end(target)
        return cached
    array = _load(target) if target.is_file() else None
    if array is None:
        try:
            _decode_into(video, target)
        except OSError as exc:
            raise InputError(
                f"cannot write the decoded-frame cache {target} ({exc.strerror or exc}); set "
                "MISTD_CACHE_DIR to a writable folder with space or turn the cache off "
                "(data.cache=false)",
                path=video,
            ) from exc
        _remove_stale(video.resolve(), target)
        array = np.load(target, mmap_mode="r")
    _OPEN[target] = array
    while len(_OPEN) > _MAX_OPEN:
        _OPEN.popitem(last=False)
    return array


def _load(target: Path) -> np.ndarray | None:
    """The cached array, or None (after removing the file) when it cannot be read as one."""
    global _WARNED_CORRUPT
    try:
        array = np.load(target, mmap_mode="r", allow_pickle=False)
        if array.ndim != 3 or array.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"a {array.ndim}-d {array.dtype} array")
        return array
    except (OSError, ValueError, EOFError) as exc:
        if not _WARNED_CORRUPT:
            warnings.warn(
                f"{target}: unreadable decoded-frame cache file ({exc}); decoding the video again",
                stacklevel=3,
            )
            _WARNED_CORRUPT = True
        with contextlib.suppress(OSError):
            target.unlink()
        return None


def prepare(videos: Iterable[str | Path], progress: bool = True) -> int:
    """Decode every video not yet in the cache; returns how many were decoded."""
    todo = sorted({Path(v) for v in videos if not cache_path(v).is_file()})
    items: Iterable[Path] = todo
    if progress and todo:
        from tqdm import tqdm

        items = tqdm(todo, desc="decode videos into the frame cache", unit="video", leave=False)
    for video in items:
        decoded_frames(video)
    return len(todo)
