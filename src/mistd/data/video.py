"""Video files: probe, decode to single-channel frames, and write mp4 atomically.

Decoding uses PyAV (FFmpeg) and falls back to OpenCV when PyAV cannot open a file. Infrared video
is single channel: PyAV returns the luma plane (`gray`, or `gray16le` for 16-bit streams), OpenCV
frames with equal B/G/R channels keep one channel and others are converted with
`cv2.COLOR_BGR2GRAY`. Any file that neither backend can read raises `InputError` naming it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from mistd.errors import InputError, check_range
from mistd.io import atomic_path

VIDEO_SUFFIXES = (".avi", ".mp4", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".webm")


@dataclass(frozen=True)
class VideoInfo:
    """What a video holds: frame count, frame rate and frame size in pixels."""

    frames: int
    fps: float
    width: int
    height: int


def _to_single_channel(image: np.ndarray) -> np.ndarray:
    """`[H, W]` from `[H, W]`, `[H, W, 3]` or `[H, W, 4]` (BGR(A)); equal channels kept exactly."""
    if image.ndim == 2:
        return image
    color = image[..., :3]
    if np.array_equal(color[..., 0], color[..., 1]) and np.array_equal(
        color[..., 1], color[..., 2]
    ):
        return np.ascontiguousarray(color[..., 0])
    return cv2.cvtColor(np.ascontiguousarray(color), cv2.COLOR_BGR2GRAY)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise InputError("video file not found", path=path)
    if not path.is_file():
        raise InputError("expected a video file, got a folder", path=path)


def _av_frame_to_array(frame) -> np.ndarray:
    # 16-bit gray streams (e.g. FFV1/PNG-in-MKV thermal recordings) keep their bit depth.
    if "16" in frame.format.name and frame.format.name.startswith("gray"):
        return frame.to_ndarray(format="gray16le")
    return frame.to_ndarray(format="gray")


def _iter_av(path: Path) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.video:
            raise InputError("file has no video stream", path=path)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in container.decode(stream):
            yield _av_frame_to_array(frame)


def _iter_cv2(path: Path) -> Iterator[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError("cannot open video (unknown or corrupt format)", path=path)
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            yield _to_single_channel(frame)
    finally:
        capture.release()


def _av_opens(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.video)
    except (av.FFmpegError, OSError, ValueError):
        return False


def iter_video_frames(path: str | Path) -> Iterator[np.ndarray]:
    """Yield the frames of a video in order as `[H, W]` uint8 (uint16 for 16-bit streams) arrays.

    Raises `InputError` naming the file if it cannot be opened or decoding fails part way, or if
    it holds no frame at all.
    """
    import av

    path = Path(path)
    _check_file(path)
    source = _iter_av(path) if _av_opens(path) else _iter_cv2(path)
    count = 0
    try:
        for frame in source:
            count += 1
            yield frame
    except (av.FFmpegError, cv2.error) as exc:
        raise InputError(f"video decoding failed after {count} frames ({exc})", path=path) from exc
    if count == 0:
        raise InputError("no frame could be decoded (corrupt or empty video)", path=path)


def video_info(path: str | Path) -> VideoInfo:
    """Frame count, fps and size of a video.

    The count comes from the container header when it has one, else from counting packets
    (no decoding); OpenCV is used when PyAV cannot open the file.
    """
    import av

    path = Path(path)
    _check_file(path)
    if _av_opens(path):
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate or 0
                width, height = stream.codec_context.width, stream.codec_context.height
                frames = int(stream.frames or 0)
                if frames <= 0:
                    frames = sum(1 for p in container.demux(stream) if p.size > 0)
            if width > 0 and height > 0 and frames > 0:
                return VideoInfo(frames=frames, fps=float(rate), width=width, height=height)
        except av.FFmpegError as exc:
            raise InputError(f"cannot read video header ({exc})", path=path) from exc
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise InputError("cannot open video (unknown or corrupt format)", path=path)
        frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = float(capture.get(cv2.CAP_PROP_FPS))
        width = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if frames <= 0 or width <= 0 or height <= 0:
        raise InputError("video has no readable frames (corrupt or empty)", path=path)
    return VideoInfo(frames=frames, fps=fps, width=width, height=height)


def read_video_frame(path: str | Path, index: int) -> np.ndarray:
    """Frame `index` (0-based) of a video as `[H, W]`; decodes from the start (exact, not fast).

    For many frames of one video use `VideoFrameReader`, which keeps its decoder open.
    """
    return VideoFrameReader(path).read(index)


class VideoFrameReader:
    """Random access to the frames of one video with an open decoder.

    Reading forward (the usual case: consecutive clips) decodes only the new frames; reading
    backward reopens the file and decodes from the start, which is exact for every container
    (seeking by timestamp is not reliable for AVI/variable-rate files).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        _check_file(self.path)
        self._iterator: Iterator[np.ndarray] | None = None
        self._next_index = 0
        self._last: tuple[int, np.ndarray] | None = None

    def read(self, index: int) -> np.ndarray:
        """Frame `index` as `[H, W]` uint8/uint16."""
        if index < 0:
            raise InputError(f"frame index {index} is negative", path=self.path)
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        if self._iterator is None or index < self._next_index:
            self.close()
            self._iterator = iter_video_frames(self.path)
            self._next_index = 0
        frame = None
        while self._next_index <= index:
            frame = next(self._iterator, None)
            if frame is None:
                count = self._next_index
                self.close()
                raise InputError(
                    f"video has {count} frames, frame {index} was requested", self.path
                )
            self._next_index += 1
        assert frame is not None
        self._last = (index, frame)
        return frame

    def close(self) -> None:
        if self._iterator is not None:
            with contextlib.suppress(Exception):
                self._iterator.close()  # type: ignore[attr-defined]
        self._iterator = None
        self._next_index = 0


def _pick_codec() -> str:
    import av

    available = av.codecs_available
    for name in ("libx264", "libopenh264", "mpeg4"):
        if name in available:
            return name
    return ""


class VideoWriter:
    """Write BGR uint8 frames `[H, W, 3]` (or gray `[H, W]`) to a video file, atomically.

    PyAV encodes H.264 (libx264, else mpeg4 when no H.264 encoder is built in) in yuv420p; OpenCV
    (`mp4v`) is the fallback. Frames go to a temporary sibling that is renamed onto `path` when the
    `with` block ends without error (an error leaves no file behind). yuv420p needs even sizes, so
    an odd width/height is padded by one replicated pixel column/row.

    Args:
        path: output file (`.mp4` recommended).
        fps: frames per second.
        size: `(width, height)` of every frame.
    """

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        check_range("fps", fps, "(0, 1000]", path=self.path)
        self.fps = float(fps)
        self.width, self.height = int(size[0]), int(size[1])
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"bad video size {size}", path=self.path)
        self._stack: contextlib.ExitStack | None = None
        self._container = None
        self._stream = None
        self._cv_writer = None
        self.frames_written = 0

    def __enter__(self) -> VideoWriter:
        self._stack = contextlib.ExitStack()
        tmp = self._stack.enter_context(atomic_path(self.path))
        even_w, even_h = self.width + self.width % 2, self.height + self.height % 2
        codec = _pick_codec()
        if codec:
            import av

            try:
                self._container = av.open(str(tmp), mode="w")
                stream = self._container.add_stream(
                    codec, rate=Fraction(self.fps).limit_denominator(1001)
                )
                stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
                if codec == "libx264":
                    stream.options = {"crf": "18", "preset": "veryfast"}
                self._stream = stream
            except (av.FFmpegError, ValueError):
                if self._container is not None:
                    self._container.close()
                self._container = self._stream = None
        if self._stream is None:
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(str(tmp), fourcc, self.fps, (even_w, even_h))
            if not self._cv_writer.isOpened():
                error = InputError("cannot open a video encoder for this file", path=self.path)
                # Passing the error in makes atomic_path delete the temporary file.
                self._stack.__exit__(InputError, error, None)
                raise error
        return self

    def write(self, image: np.ndarray) -> None:
        """Append one frame: `[H, W, 3]` BGR uint8 or `[H, W]` uint8, of the declared size."""
        image = np.asarray(image)
        if image.dtype != np.uint8:
            raise ValueError(f"VideoWriter expects uint8 frames, got {image.dtype}")
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if image.shape[:2] != (self.height, self.width) or image.shape[2] != 3:
            raise ValueError(
                f"frame shape {image.shape} does not match the video size "
                f"{self.width}x{self.height} (width x height) with 3 channels"
            )
        pad_h, pad_w = self.height % 2, self.width % 2
        if pad_h or pad_w:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
        if self._stream is not None:
            import av

            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        else:
            self._cv_writer.write(image)
        self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._stream is not None:
                if exc_type is None:
                    for packet in self._stream.encode():
                        self._container.mux(packet)
                self._container.close()
            elif self._cv_writer is not None:
                self._cv_writer.release()
        finally:
            assert self._stack is not None
            # atomic_path renames the temporary file only when no exception is passed in.
            self._stack.__exit__(exc_type, exc, tb)


def sequence_file_name(name: str) -> str:
    """A sequence name as a file name (path separators and odd characters replaced)."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "video"


class SequenceVideos:
    """One video per sequence: `write(sequence, image)` appends a BGR image to
    `<folder>/<sequence><suffix>.mp4`, finishing the previous sequence's video when the sequence
    changes (frames come sequence by sequence). A context manager: the last video is finished on
    exit (none is left half-written on error). THE writer of per-sequence videos of `mistd
    detect`, `mistd track`, `mistd demo` and the map panels.

    Attributes:
        videos: the files written (or being written), in order.
    """

    def __init__(self, folder: str | Path, fps: float, suffix: str = ""):
        self.folder = Path(folder)
        self.fps = float(fps)
        self.suffix = suffix
        self.videos: list[Path] = []
        self._writer: VideoWriter | None = None
        self._sequence: str | None = None

    def write(self, sequence: str, image: np.ndarray) -> None:
        if self._writer is None or self._sequence != sequence:
            self._finish()
            path = self.folder / f"{sequence_file_name(sequence)}{self.suffix}.mp4"
            height, width = image.shape[:2]
            self._writer = VideoWriter(path, self.fps, (width, height))
            self._writer.__enter__()
            self._sequence = sequence
            self.videos.append(path)
        self._writer.write(image)

    def _finish(self, exc_info=(None, None, None)) -> None:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.__exit__(*exc_info)

    def __enter__(self) -> SequenceVideos:
        return self

    def __exit__(self, *exc_info) -> None:
        self._finish(exc_info)
