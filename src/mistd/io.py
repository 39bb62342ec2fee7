"""Atomic file output and run-directory helpers.

Every output file is written to a temporary sibling and renamed into place, so a crash or an error
never leaves a half-written file and never destroys an earlier good one. A temporary's name holds
this host's name and the writing process's id (`.NAME.mistd-HOST-PID.XXXX.tmp`): one left by a
process killed mid-write (SIGKILL, power loss) is removed by the next write of the same NAME, once
that process is gone (`remove_stale_temporaries`).

`check_overwrite` refuses to replace an existing output without `--overwrite`; `check_disjoint`
refuses an output folder that is, holds or lies inside an input; `lock_folder` keeps two processes
from writing one run folder at once.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import socket
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
    remove_stale_temporaries(path.parent, path.stem)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=temporary_prefix(path.stem), suffix=f".tmp{path.suffix}", dir=path.parent
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


def temporary_prefix(name: str) -> str:
    """Prefix of this process's temporary files for output `name` (see the module docstring)."""
    return f".{name}.mistd-{_host()}-{os.getpid()}."


def _host() -> str:
    return "".join(c if c.isalnum() else "_" for c in socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, another user's
        return True
    return True


def remove_stale_temporaries(folder: str | Path, name: str) -> list[Path]:
    """Delete the temporaries of output `name` in `folder` left by processes of this host that no
    longer run (killed mid-write); returns what was removed."""
    folder = Path(folder)
    stem = f".{name}.mistd-{_host()}-"
    removed = []
    try:
        entries = [p for p in folder.iterdir() if p.name.startswith(stem)]
    except OSError:
        return removed
    for entry in entries:
        pid_text = entry.name[len(stem) :].split(".", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid() or _alive(int(pid_text)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
        removed.append(entry)
    return removed


def check_overwrite(path: str | Path, overwrite: bool, option: str = "--out") -> Path:
    """`path` if it may be written: it does not exist, or `overwrite` is set (and it is a file).
    Else `InputError` saying to pass `--overwrite`."""
    from mistd.errors import InputError

    path = Path(path)
    if path.is_dir():
        raise InputError(f"{option} is a folder, expected a file name", path)
    if path.exists() and not overwrite:
        raise InputError(
            f"{option} exists; pass --overwrite to replace it, or choose another name", path
        )
    return path


def check_disjoint(out: str | Path, inputs: list[str | Path], option: str = "--out") -> None:
    """`InputError` if folder `out` is one of `inputs`, holds one of them or lies inside one
    (writing it, or replacing it with --overwrite, would destroy the input)."""
    from mistd.errors import InputError

    target = Path(os.path.abspath(out))
    real_target = Path(os.path.realpath(out))
    for item in inputs:
        for source in {Path(os.path.abspath(item)), Path(os.path.realpath(item))}:
            for candidate in (target, real_target):
                if candidate == source or candidate in source.parents:
                    raise InputError(
                        f"{option} is or holds the input {item}: choose a folder outside the "
                        "input data",
                        out,
                    )
                if source in candidate.parents and source.is_dir():
                    raise InputError(
                        f"{option} lies inside the input folder {item}: choose a folder outside it",
                        out,
                    )


@contextlib.contextmanager
def lock_folder(folder: str | Path, what: str = "run folder") -> Iterator[Path]:
    """Hold an exclusive lock on `folder` (a `.lock` file in it) for the `with` block; another
    process holding it already -> `InputError`. The lock ends with the process (flock)."""
    import fcntl

    from mistd.errors import InputError

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "a+")  # noqa: SIM115 (held for the block)
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(
                f"this {what} is in use by another mistd process (wait for it to end, or use "
                "another folder)",
                folder,
            ) from None
        yield folder
    finally:
        handle.close()


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
    remove_stale_temporaries(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent))
    # mkdtemp makes 0700 folders: give the result the permissions a plain mkdir would.
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        try:
            yield tmp
        except OSError as exc:
            # Name the file the user will look for, not its place in the temporary folder.
            name = str(exc.filename or "")
            if not name.startswith(str(tmp)):
                raise
            raise OSError(exc.errno, exc.strerror, str(path) + name[len(str(tmp)) :]) from exc
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


# Byte-order marks of the encodings a text file a user hands us may be in, longest first.
_BOMS = (
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)


def read_text(path: str | Path, what: str = "file", limit: int | None = None) -> str:
    """The text of a UTF-8 file (a leading BOM dropped), or `InputError` naming the file and the
    encoding found (UTF-16/32 by its byte-order mark, else the first byte that is not UTF-8).

    `limit` bounds the size in bytes (an error beyond it), for files parsed whole (YAML).
    """
    from mistd.errors import InputError

    path = Path(path)
    try:
        if limit is not None and path.stat().st_size > limit:
            raise InputError(
                f"{what} is {path.stat().st_size} bytes, more than the {limit} accepted", path
            )
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError(f"{what} is a folder, expected a file", path) from None
    for bom, name in _BOMS:
        if data.startswith(bom):
            raise InputError(
                f"{what} is {name} text (byte-order mark found): save it as UTF-8", path
            )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"{what} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}; "
            "Latin-1 or another 8-bit encoding?): save it as UTF-8",
            path,
            line,
        ) from None
    return text.removeprefix("\ufeff")
