"""Frame pixels: image files, NUDT-MIRSDT `.mat` stacks and video frames, kept 8- or 16-bit.

Frames are read with `cv2.IMREAD_UNCHANGED`. Colour files whose channels are equal (common for
infrared stored as RGB) keep one channel exactly; files with unequal channels are converted with
`cv2.COLOR_BGR2GRAY` (luma weights), the alpha channel is ignored.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np

from mistd.data.video import VideoFrameReader
from mistd.errors import InputError
from mistd.structures import FrameRecord

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


def _single_channel(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 1:
        return image[..., 0]
    color = image[..., :3]
    if np.array_equal(color[..., 0], color[..., 1]) and np.array_equal(
        color[..., 1], color[..., 2]
    ):
        return np.ascontiguousarray(color[..., 0])
    return cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_BGR2GRAY)


def read_image(path: str | Path) -> tuple[np.ndarray, int]:
    """Read an image file as `([H, W] uint8 | uint16, bit_depth)`.

    Raises `InputError` naming the file when it is missing, unreadable or not 8/16-bit.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("image not found (use --root to remap the paths of an index)", path=path)
    if path.suffix.lower() == ".mat":
        return _read_mix_mat(path)
    try:
        # imdecode(fromfile) instead of imread: works with non-ASCII paths on every platform.
        image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except (cv2.error, OSError, ValueError):
        image = None
    if image is None:
        raise InputError("cannot read image (corrupt or unsupported format)", path=path)
    if image.dtype == np.uint8:
        bit_depth = 8
    elif image.dtype == np.uint16:
        bit_depth = 16
    else:
        raise InputError(f"unsupported pixel type {image.dtype} (expected 8- or 16-bit)", path=path)
    return _single_channel(image), bit_depth


def _read_mix_mat(path: Path) -> tuple[np.ndarray, int]:
    """The frame in a NUDT-MIRSDT `Mix` file: the last slice of its `[t, H, W]` stack (the
    stack holds the frames up to this one), rounded to 8 bits (16 if values exceed 255)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path), variable_names=["Mix"])
    except (OSError, ValueError, NotImplementedError, scipy.io.matlab.MatReadError) as exc:
        # NotImplementedError: MATLAB v7.3 (HDF5) files, which scipy does not read.
        raise InputError(f"cannot read MATLAB file ({exc})", path=path) from None
    mix = data.get("Mix")
    if mix is None or mix.ndim not in (2, 3) or mix.size == 0:
        raise InputError("expected a 'Mix' array [t, H, W] (NUDT-MIRSDT frame stack)", path=path)
    frame = np.asarray(mix if mix.ndim == 2 else mix[-1], np.float64)
    if not np.isfinite(frame).all():
        raise InputError("the 'Mix' frame has non-finite values", path=path)
    top = 255 if frame.max() <= 255 else 65535
    dtype = np.uint8 if top == 255 else np.uint16
    return np.clip(np.rint(frame), 0, top).astype(dtype), 8 if top == 255 else 16


_VIDEO_READERS: OrderedDict[Path, VideoFrameReader] = OrderedDict()
_VIDEO_READERS_PID = os.getpid()
_MAX_OPEN_VIDEOS = 4


def _video_reader(path: Path) -> VideoFrameReader:
    global _VIDEO_READERS_PID
    if os.getpid() != _VIDEO_READERS_PID:
        # A forked DataLoader worker must not share its parent's open decoders.
        _VIDEO_READERS.clear()
        _VIDEO_READERS_PID = os.getpid()
    reader = _VIDEO_READERS.get(path)
    if reader is None:
        reader = VideoFrameReader(path)
        _VIDEO_READERS[path] = reader
        while len(_VIDEO_READERS) > _MAX_OPEN_VIDEOS:
            _VIDEO_READERS.popitem(last=False)[1].close()
    _VIDEO_READERS.move_to_end(path)
    return reader


def load_frame(record: FrameRecord, decoded_cache: bool = False) -> tuple[np.ndarray, int]:
    """Pixels of one frame: `([H, W] uint8 | uint16, bit_depth)` from its image or video.

    With `decoded_cache`, video frames come from the decoded-frame cache (`mistd.data.frame_cache`:
    each video decoded once, then read by random access), as training wants.
    Raises `InputError` naming the file if it cannot be read or if its size differs from the size
    recorded for the frame (sizes may not change inside a sequence).
    """
    if record.path is not None:
        image, bit_depth = read_image(record.path)
        source = Path(record.path)
    elif record.video is not None and decoded_cache:
        from mistd.data.frame_cache import decoded_frames

        frames = decoded_frames(record.video)
        if record.index >= len(frames):
            raise InputError(
                f"video has {len(frames)} frames, frame {record.index} was requested",
                path=record.video,
            )
        image = np.array(frames[record.index])
        bit_depth = 16 if image.dtype == np.uint16 else 8
        source = Path(record.video)
    elif record.video is not None:
        image = _video_reader(Path(record.video)).read(record.index)
        bit_depth = 16 if image.dtype == np.uint16 else 8
        source = Path(record.video)
    else:
        raise InputError(f"frame {record.index} of sequence '{record.sequence}' has no file")
    height, width = image.shape
    if (record.width is not None and record.width != width) or (
        record.height is not None and record.height != height
    ):
        raise InputError(
            f"frame size {width}x{height} differs from {record.width}x{record.height} expected "
            f"for sequence '{record.sequence}' (sizes may not change inside a sequence; "
            "annotation sizes must match the image)",
            path=source,
        )
    return image, bit_depth


def image_size(path: Path) -> tuple[int, int] | None:
    """`(width, height)` of an image file, or None if it does not exist."""
    if not path.is_file():
        return None
    image, _ = read_image(path)
    return image.shape[1], image.shape[0]
