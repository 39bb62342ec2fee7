"""Generate one synthetic sequence in memory: scene, sensor and targets combined frame by frame.

Definitions (boxes, visibility, SCR) and reproducibility: `mistd.data.synth` (module docstring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mistd.data.synth.background import SceneModel, draw_clutter
from mistd.data.synth.config import SynthConfig, validate_config
from mistd.data.synth.scr import local_background, measure_scr
from mistd.data.synth.sensor import SensorModel, draw_sensor, quantise, solve_signal
from mistd.data.synth.targets import (
    empty_block,
    make_tracks,
    peak_fraction,
    psf_patch,
    target_box,
    visible_box,
)


@dataclass
class FrameTruth:
    """Ground truth of one frame: the labelled (visible) targets.

    Attributes:
        boxes: `[N, 4]` float32 xyxy pixels (clipped to the image).
        labels: `[N]` int64 (all 0: one class, "target").
        scr: `[N]` float32 SCR measured on the output frame (module docstring definition).
        scr_wanted: `[N]` float32 SCR the generator aimed for.
        track_ids: `[N]` int64 track index within the sequence.
        centers: `[N, 2]` float32 sub-pixel target centres `(x, y)`.
        sigmas: `[N, 2]` float32 PSF sigmas `(sx, sy)`.
        clutter_dominated: `[N]` bool, background at the centre pixel already above the wanted peak.
        saturated: `[N]` bool, the wanted peak exceeded full scale.
    """

    boxes: np.ndarray
    labels: np.ndarray
    scr: np.ndarray
    scr_wanted: np.ndarray
    track_ids: np.ndarray
    centers: np.ndarray
    sigmas: np.ndarray
    clutter_dominated: np.ndarray
    saturated: np.ndarray

    @property
    def num_targets(self) -> int:
        return int(self.boxes.shape[0])


def generate_sequence(
    cfg: SynthConfig,
    rng: np.random.Generator,
    background: np.ndarray | None = None,
) -> tuple[np.ndarray, list[FrameTruth]]:
    """Generate one sequence in memory.

    Args:
        cfg: generator settings (`cfg.num_frames` frames of `cfg.height x cfg.width`).
        rng: random generator (e.g. from `sequence_rngs(seed, n)[i]`).
        background: optional real footage `[M, H, W]` float32 in full-scale units (semi-synthetic
            mode; its size replaces `cfg`'s, no simulated clutter or sensor noise is added).

    Returns:
        frames `[M, H, W]` uint8 (bit_depth 8) or uint16 (16), and one `FrameTruth` per frame.
    """
    validate_config(cfg)
    if background is not None:
        background = np.asarray(background, dtype=np.float32)
        num_frames, h, w = background.shape
        scene = sensor = None
    else:
        num_frames, h, w = cfg.num_frames, cfg.height, cfg.width
        # The order of these four rng uses is part of "same seed -> same bytes".
        clutter = draw_clutter(cfg, rng)
        sensor_params = draw_sensor(cfg, rng)
        scene = SceneModel(clutter, (h, w), num_frames, rng)
        sensor = SensorModel(sensor_params, (h, w), rng)
    size = (h, w)
    full = 255.0 if cfg.bit_depth == 8 else 65535.0
    tracks = make_tracks(cfg, rng, size, num_frames)
    empty = empty_block(cfg, rng, num_frames)
    noise_seed = rng.integers(0, 2**63 - 1)
    noise_rng = np.random.default_rng(noise_seed)

    frames = np.empty((num_frames, h, w), dtype=np.uint8 if cfg.bit_depth == 8 else np.uint16)
    truths: list[FrameTruth] = []
    for k in range(num_frames):
        if scene is not None:
            radiance = scene.render(k)
            clean = sensor.clean(radiance)
            z = noise_rng.standard_normal(size).astype(np.float32)
            base = clean + z * sensor.noise_std(clean)
            base_q = quantise(sensor.apply_defects(base.copy()), cfg.bit_depth)
            camera = scene.camera[k]
        else:
            radiance = background[k]
            clean = radiance
            z = None
            base_q = quantise(radiance, cfg.bit_depth)
            camera = np.zeros(2)

        # Every rendered target: centre in image coordinates (world path minus camera motion).
        shown = []
        if not empty[k]:
            for tid, track in enumerate(tracks):
                cx, cy = track.xy[k] - camera
                sx, sy = track.sigma
                if -4 * sx < cx < w + 4 * sx and -4 * sy < cy < h + 4 * sy:
                    shown.append((tid, cx, cy, sx, sy, visible_box(cx, cy, track.sigma, cfg, size)))
        all_boxes = np.array(
            [target_box(cx, cy, sx, sy, cfg.box_margin) for _, cx, cy, sx, sy, _ in shown]
        ).reshape(-1, 4)

        target_radiance = np.zeros(size, dtype=np.float32)
        keep = np.zeros(size, dtype=bool)
        records = []
        for n, (tid, cx, cy, sx, sy, vis) in enumerate(shown):
            box = all_boxes[n]
            others = np.delete(all_boxes, n, axis=0)
            mean, std = local_background(base_q, box, others)
            if not np.isfinite(mean):
                continue
            wanted = float(tracks[tid].scr[k])
            peak_dn = mean + wanted * std
            saturated = peak_dn > full - 0.5
            peak = min(peak_dn, full - 0.5) / full
            frac = peak_fraction(cx, cy, sx, sy)
            col, row = math.floor(cx), math.floor(cy)
            inside = 0 <= col < w and 0 <= row < h
            nominal = wanted * std / full
            if sensor is not None and inside:
                g = float(sensor.gain[row, col])
                s = solve_signal(
                    peak, sensor.params.read_noise, sensor.params.shot_gain, float(z[row, col])
                )
                amplitude = (s - float(clean[row, col])) / (g * frac)
            elif inside:
                amplitude = (peak - float(clean[row, col])) / frac
            else:
                amplitude = nominal / frac
            # A target never goes below half its nominal contrast: on a background pixel that is
            # already brighter than the wanted peak (bright cloud edge) the SCR ends up higher.
            dominated = amplitude < 0.5 * nominal / frac
            amplitude = max(amplitude, 0.5 * nominal / frac)
            patch = psf_patch(cx, cy, sx, sy, size)
            if patch is None:
                continue
            ys, xs, psf = patch
            target_radiance[ys, xs] += (amplitude * psf).astype(np.float32)
            # Sensor defects never hide a target's core (they would make its SCR meaningless).
            bx0, by0 = max(math.floor(box[0]), 0), max(math.floor(box[1]), 0)
            keep[by0 : max(math.ceil(box[3]), 0), bx0 : max(math.ceil(box[2]), 0)] = True
            if vis is not None:
                records.append((tid, cx, cy, sx, sy, vis, wanted, dominated, saturated))

        if sensor is not None:
            signal = clean + target_radiance * sensor.gain
            frame = signal + z * sensor.noise_std(signal)
            frame = sensor.apply_defects(frame, keep=keep)
        else:
            frame = clean + target_radiance
        frames[k] = quantise(frame, cfg.bit_depth)

        boxes = np.array([r[5] for r in records], dtype=np.float32).reshape(-1, 4)
        centers_full = np.array(
            [target_box(r[1], r[2], r[3], r[4], cfg.box_margin) for r in records]
        ).reshape(-1, 4)
        scr = np.array(
            [
                measure_scr(
                    frames[k], centers_full[i], np.delete(all_boxes, _index(shown, r[0]), 0)
                )
                for i, r in enumerate(records)
            ],
            dtype=np.float32,
        )
        truths.append(
            FrameTruth(
                boxes=boxes,
                labels=np.zeros(len(records), dtype=np.int64),
                scr=scr,
                scr_wanted=np.array([r[6] for r in records], dtype=np.float32),
                track_ids=np.array([r[0] for r in records], dtype=np.int64),
                centers=np.array([(r[1], r[2]) for r in records], dtype=np.float32).reshape(-1, 2),
                sigmas=np.array([(r[3], r[4]) for r in records], dtype=np.float32).reshape(-1, 2),
                clutter_dominated=np.array([r[7] for r in records], dtype=bool),
                saturated=np.array([r[8] for r in records], dtype=bool),
            )
        )
    return frames, truths


def _index(shown: list, track_id: int) -> int:
    return next(i for i, s in enumerate(shown) if s[0] == track_id)


def sequence_rngs(seed: int, count: int) -> list[np.random.Generator]:
    """One independent generator per sequence: `SeedSequence(seed).spawn(count)`."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(count)]
