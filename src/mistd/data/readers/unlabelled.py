"""Unlabelled footage: a video file (format `video`) or folders of images (format `images`)."""

from __future__ import annotations

from pathlib import Path

from mistd.data.readers.common import natural_key
from mistd.data.readers.frames import IMAGE_SUFFIXES, image_size
from mistd.data.video import video_info
from mistd.errors import InputError
from mistd.structures import FrameDataset, FrameRecord, Sequence


def read_video(path: str | Path) -> FrameDataset:
    """A video as one unlabelled sequence."""
    path = Path(path)
    info = video_info(path)
    frames = [
        FrameRecord(sequence=path.stem, index=i, video=path, width=info.width, height=info.height)
        for i in range(info.frames)
    ]
    return FrameDataset(
        sequences=[Sequence(name=path.stem, frames=frames)], source=str(path), format="video"
    )


def folder_images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )


def read_image_folder(path: str | Path) -> FrameDataset:
    """Images of a folder (natural order) as one unlabelled sequence; sub-folders of images give
    one sequence each. Frame sizes are taken from each sequence's first image."""
    path = Path(path)
    folders = [path] if folder_images(path) else []
    if not folders:
        folders = sorted(
            (p for p in path.iterdir() if p.is_dir() and folder_images(p)),
            key=lambda p: natural_key(p.name),
        )
    if not folders:
        raise InputError(
            "no images found (expected " + "/".join(IMAGE_SUFFIXES) + " files)", path=path
        )
    sequences = []
    for folder in folders:
        files = folder_images(folder)
        numbers = [int(f.stem) for f in files if f.stem.isdigit()]
        if len(numbers) == len(files) > 1:
            expected = set(range(numbers[0], numbers[-1] + 1))
            missing = sorted(expected - set(numbers))
            if missing:
                import warnings

                warnings.warn(
                    f"{folder}: frame numbers have gaps ({len(missing)} missing, the first "
                    f"{missing[0]}); the frames are read in order as if consecutive",
                    stacklevel=2,
                )
        width, height = image_size(files[0]) or (None, None)
        frames = [
            FrameRecord(sequence=folder.name, index=i, path=f, width=width, height=height)
            for i, f in enumerate(files)
        ]
        sequences.append(Sequence(name=folder.name, frames=frames))
    return FrameDataset(sequences=sequences, source=str(path), format="images")
