"""Backgrounds of the synthetic infrared video generator (`mistd.data.synth`): the simulated
scene (`SceneModel`) or real footage (`load_backgrounds`, the semi-synthetic mode).

All radiance values are in normalised full-scale units (0 = black, 1 = the largest digital number
of the output bit depth), so 8- and 16-bit sequences differ only by quantisation.

Scene model (one per sequence, built once, then sampled per frame):

- **Sky**: a base level that brightens towards the horizon (longer atmospheric path, as in real
  MWIR/LWIR footage) with a gentle horizontal gradient.
- **Clouds**: two periodic fractal fields with power spectrum `1/f^beta` (FFT-filtered white noise),
  blended as `cos(a t) F1 + sin(a t) F2` so the clouds slowly change shape while keeping the same
  statistics, and shifted by wind + camera motion (periodic fields wrap, so any drift works). A soft
  threshold at the coverage quantile gives the cloud body; a narrow band just outside the threshold,
  stronger on the sun-facing side, gives the bright cloud edges (thin, bright, target-like
  structures: the confounders background-modelling detectors must reject).
- **Ground** (optional): below an undulating horizon (tilt + 1-D fractal hills), a warmer textured
  fractal surface, a bumpy tree line and a few warm rectangular structures with bright rims.
- **Camera**: slow pan (drift) plus smooth jitter shift the whole scene; clouds move on top of it.
- **Optics**: a small Gaussian blur (vignetting and the sensor: `mistd.data.synth.sensor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.special import ndtri

from mistd.data.synth.config import SynthConfig, draw_range
from mistd.errors import InputError


def fractal_field(rng: np.random.Generator, shape: tuple[int, int], beta: float) -> np.ndarray:
    """Periodic Gaussian random field with power spectrum `1/f^beta`, zero mean, unit std.

    Args:
        rng: random generator.
        shape: `(H, W)` of the field.
        beta: spectral exponent (about 2 = rough, 3 = smooth cloud-like, 3.5+ = very smooth).

    Returns:
        `[H, W]` float32 array; it tiles seamlessly (periodic in both axes).
    """
    h, w = shape
    spectrum = np.fft.rfft2(rng.standard_normal(shape))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    freq = np.sqrt(fy * fy + fx * fx)
    freq[0, 0] = 1.0
    spectrum *= freq ** (-beta / 2.0)
    spectrum[0, 0] = 0.0
    field = np.fft.irfft2(spectrum, s=shape)
    field -= field.mean()
    field /= field.std() + 1e-12
    return field.astype(np.float32)


def fractal_line(rng: np.random.Generator, length: int, beta: float) -> np.ndarray:
    """Periodic 1-D `1/f^beta` profile (zero mean, unit std), `[length]` float32."""
    spectrum = np.fft.rfft(rng.standard_normal(length))
    freq = np.fft.rfftfreq(length)
    freq[0] = 1.0
    spectrum *= freq ** (-beta / 2.0)
    spectrum[0] = 0.0
    line = np.fft.irfft(spectrum, n=length)
    line -= line.mean()
    line /= line.std() + 1e-12
    return line.astype(np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass
class ClutterParams:
    """Drawn (per sequence) values of the background model; see the module docstring.

    Levels and amplitudes are in full-scale units; motions in pixels per frame.
    """

    sky_level: float
    horizon_glow: float
    sky_gradient: float
    cloud_beta: float
    cloud_coverage: float
    cloud_contrast: float
    cloud_texture: float
    edge_gain: float
    edge_width: float
    sun_angle: float
    cloud_evolution: float
    wind: tuple[float, float]
    has_ground: bool
    horizon_row: float
    horizon_tilt: float
    hill_height: float
    ground_level: float
    ground_texture: float
    num_structures: int
    structure_contrast: float
    pan: tuple[float, float]
    jitter: float
    optics_blur: float


class SceneModel:
    """A sequence's background: static world canvases plus per-frame camera and cloud motion.

    Its rng draws are followed by `SensorModel`'s (same rng state -> same scene and sensor).

    Args:
        params: the drawn clutter parameters.
        size: `(H, W)` of the output frames.
        num_frames: sequence length (sets how much canvas the camera pan needs).
        rng: random generator (consumed in a fixed order: same rng state -> same scene).
    """

    def __init__(
        self,
        params: ClutterParams,
        size: tuple[int, int],
        num_frames: int,
        rng: np.random.Generator,
    ):
        self.params = params
        self.size = size
        h, w = size
        p = params
        # Camera path: linear pan + smooth jitter (random walk low-passed by a moving average).
        t = np.arange(num_frames, dtype=np.float64)
        jitter = rng.standard_normal((num_frames + 8, 2)).cumsum(axis=0) * 0.35
        jitter = np.stack(
            [
                np.convolve(jitter[:, k], np.ones(5) / 5, mode="valid")[:num_frames]
                for k in range(2)
            ],
            axis=1,
        )
        jitter -= jitter.mean(axis=0)
        scale = jitter.std(axis=0).max()
        jitter *= p.jitter / scale if scale > 0 else 0.0
        jitter += rng.normal(0.0, 0.25 * p.jitter, size=jitter.shape)  # frame-to-frame shake
        self.camera = np.stack([p.pan[0] * t, p.pan[1] * t], axis=1) + jitter  # [M, 2] (dx, dy)
        self.wind = np.stack([p.wind[0] * t, p.wind[1] * t], axis=1)
        self.evolution_phase = p.cloud_evolution * t

        # The world canvas must cover every camera offset: pad by the largest excursion.
        reach = np.abs(self.camera).max(axis=0) + 4.0
        self.pad = (int(np.ceil(reach[1])), int(np.ceil(reach[0])))  # (pad_y, pad_x)
        ch, cw = h + 2 * self.pad[0], w + 2 * self.pad[1]
        self.world = self._build_world(rng, (ch, cw))  # [ch, cw, 3]: sky, ground, sky alpha

        # Clouds: periodic, so a canvas of (at least) the frame size wraps under any drift.
        cloud_shape = (max(h, 64), max(w, 64))
        base = [fractal_field(rng, cloud_shape, p.cloud_beta) for _ in range(2)]
        detail = [fractal_field(rng, cloud_shape, p.cloud_beta - 1.0) for _ in range(2)]
        self.clouds = np.dstack([base[0] + 0.25 * detail[0], base[1] + 0.25 * detail[1]]).astype(
            np.float32
        )
        self.clouds /= self.clouds.std()
        self.texture = fractal_field(rng, cloud_shape, 2.2)  # in-cloud texture (moves with clouds)
        self.threshold = float(ndtri(1.0 - np.clip(p.cloud_coverage, 1e-3, 1 - 1e-3)))

    def _build_world(self, rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
        """Static scene canvas `[h, w, 3]`: sky radiance, ground radiance, sky alpha."""
        p = self.params
        ch, cw = shape
        h = self.size[0]
        yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
        pad_y = self.pad[0]
        if p.has_ground:
            hills = fractal_line(rng, cw, 2.6) * p.hill_height
            horizon = pad_y + p.horizon_row * h + p.horizon_tilt * (xx[0] - cw / 2) + hills
        else:
            horizon = np.full(cw, pad_y + 3.0 * h, dtype=np.float32)  # far below the frame
        depth = horizon[None, :] - yy  # > 0 above the horizon
        glow_scale = 0.35 * h
        sky = (
            p.sky_level
            + p.horizon_glow * np.exp(-np.clip(depth, 0, None) / glow_scale)
            + p.sky_gradient * (xx - cw / 2) / cw
        )
        alpha = np.clip(depth + 0.5, 0.0, 1.0)  # 1 px antialiased horizon line
        ground = np.zeros(shape, dtype=np.float32)
        if p.has_ground:
            texture = fractal_field(rng, shape, 2.1)
            coarse = fractal_field(rng, shape, 3.2)
            below = np.clip(-depth, 0, None)
            # Nearer ground (lower in the frame) is warmer and more textured; a bumpy tree line
            # sits on the horizon.
            ground = (
                p.ground_level
                + 0.3 * p.ground_texture * coarse
                + p.ground_texture * texture * np.clip(below / (0.15 * h), 0.3, 1.5)
                - 0.04 * np.exp(-below / 6.0)
            )
            tree_line = np.clip(fractal_line(rng, cw, 1.6) * 2.5 + 3.0, 0, None)
            trees = (depth > -0.5) & (depth < tree_line[None, :])
            ground = np.where(
                trees, p.ground_level - 0.02 + 0.5 * p.ground_texture * texture, ground
            )
            alpha = np.where(trees, 0.0, alpha)
            for _ in range(p.num_structures):
                sw, sh = int(rng.integers(4, 24)), int(rng.integers(3, 12))
                x0 = int(rng.integers(0, max(cw - sw, 1)))
                top = int(np.clip(horizon[x0] + rng.uniform(1, 0.5 * h), 0, ch - sh))
                level = p.ground_level + p.structure_contrast * rng.uniform(0.5, 1.0)
                ground[top : top + sh, x0 : x0 + sw] = level
                # Warm rims (sun-heated edges) are as target-like as cloud edges.
                ground[top : top + 1, x0 : x0 + sw] = level + 0.5 * p.structure_contrast
        world = np.dstack([sky, ground, alpha]).astype(np.float32)
        return world

    def render(self, index: int) -> np.ndarray:
        """Noise-free scene radiance of frame `index` (after optics), `[H, W]` float32."""
        p = self.params
        h, w = self.size
        dx, dy = self.camera[index]
        m = np.float32([[1, 0, dx + self.pad[1]], [0, 1, dy + self.pad[0]]])
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        world = cv2.warpAffine(self.world, m, (w, h), flags=flags, borderMode=cv2.BORDER_REFLECT)
        sky, ground, alpha = world[..., 0], world[..., 1], world[..., 2]

        wx, wy = self.wind[index]
        mc = np.float32([[1, 0, dx + wx], [0, 1, dy + wy]])
        fields = cv2.warpAffine(self.clouds, mc, (w, h), flags=flags, borderMode=cv2.BORDER_WRAP)
        texture = cv2.warpAffine(self.texture, mc, (w, h), flags=flags, borderMode=cv2.BORDER_WRAP)
        phase = float(self.evolution_phase[index])
        f = math.cos(phase) * fields[..., 0] + math.sin(phase) * fields[..., 1]
        body = _smoothstep((f - self.threshold) / 0.6)
        clouds = p.cloud_contrast * body * (1.0 + p.cloud_texture * texture)
        if p.edge_gain > 0:
            # Bright rim just outside the cloud body, stronger where the field rises towards the
            # sun (sun-lit side); the rim width is set in field units so it scales with detail.
            gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
            gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
            norm = np.sqrt(gx * gx + gy * gy) + 1e-6
            facing = (gx * np.cos(p.sun_angle) + gy * np.sin(p.sun_angle)) / norm
            lit = 0.35 + 0.65 * _smoothstep(0.5 + 0.5 * facing)
            rim = np.exp(-(((f - self.threshold + 0.1) / p.edge_width) ** 2))
            clouds = clouds + p.cloud_contrast * p.edge_gain * rim * lit
        radiance = alpha * (sky + clouds) + (1.0 - alpha) * ground
        if p.optics_blur > 0:
            radiance = cv2.GaussianBlur(radiance, (0, 0), p.optics_blur)
        return radiance.astype(np.float32, copy=False)


def draw_clutter(cfg: SynthConfig, rng: np.random.Generator) -> ClutterParams:
    """Per-sequence clutter parameters (fixed draw order: reproducible; `draw_sensor` follows)."""
    pan_angle = rng.uniform(0, 2 * np.pi)
    pan = draw_range(rng, cfg.pan_speed)
    wind_angle = pan_angle + rng.normal(0, 0.6)
    wind = draw_range(rng, cfg.wind_speed)
    has_ground = bool(rng.random() < cfg.ground_prob)
    sky_level = draw_range(rng, cfg.sky_level)
    glow = draw_range(rng, cfg.horizon_glow)
    return ClutterParams(
        sky_level=sky_level,
        horizon_glow=glow,
        sky_gradient=float(rng.normal(0, 0.03)),
        cloud_beta=draw_range(rng, cfg.cloud_beta),
        cloud_coverage=draw_range(rng, cfg.cloud_coverage),
        cloud_contrast=draw_range(rng, cfg.cloud_contrast),
        cloud_texture=cfg.cloud_texture,
        edge_gain=draw_range(rng, cfg.edge_gain),
        edge_width=cfg.edge_width,
        sun_angle=float(rng.uniform(0, 2 * np.pi)),
        cloud_evolution=draw_range(rng, cfg.cloud_evolution),
        wind=(wind * math.cos(wind_angle), wind * math.sin(wind_angle)),
        has_ground=has_ground,
        horizon_row=draw_range(rng, cfg.horizon_row),
        horizon_tilt=float(rng.normal(0, 0.04)),
        hill_height=float(rng.uniform(1.0, 0.06 * cfg.height)),
        ground_level=sky_level + glow + draw_range(rng, cfg.ground_contrast),
        ground_texture=draw_range(rng, cfg.ground_texture),
        num_structures=int(rng.integers(0, cfg.max_structures + 1)),
        structure_contrast=float(rng.uniform(0.05, 0.2)),
        pan=(pan * math.cos(pan_angle), 0.3 * pan * math.sin(pan_angle)),
        jitter=draw_range(rng, cfg.jitter),
        optics_blur=cfg.optics_blur,
    )


def load_backgrounds(
    source: str | Path,
    num_frames: int,
    size: tuple[int, int] | None = None,
    mask_grow: int = 3,
) -> tuple[np.ndarray, int]:
    """Real infrared footage for the semi-synthetic mode, with its own annotated targets removed.

    Args:
        source: a video (with an Anti-UAV track file beside it, or without), an image folder, or
            any data set `read_dataset` accepts; its FIRST sequence is used.
        num_frames: frames to take (from the start of the footage).
        size: optional `(H, W)` to resize to (boxes of the footage are scaled alike).
        mask_grow: pixels added around each annotated box before it is painted out (cv2.inpaint,
            Telea): the footage's own target must not stay in as an unlabelled target.

    Returns:
        `([num_frames, H, W] float32 in full-scale units, bit_depth)`.
    """
    from mistd.data.readers import read_dataset
    from mistd.data.readers.frames import load_frame

    dataset = read_dataset(source)
    if not dataset.sequences or not dataset.sequences[0].frames:
        raise InputError("no frames found for --backgrounds", source)
    records = dataset.sequences[0].frames
    if len(records) < num_frames:
        raise InputError(
            f"--backgrounds has {len(records)} frames in its first sequence, "
            f"{num_frames} are needed (lower --frames)",
            source,
        )
    out: list[np.ndarray] = []
    bit_depth = 8
    for record in records[:num_frames]:
        frame, bit_depth = load_frame(record)
        full = 255.0 if bit_depth == 8 else 65535.0
        if len(record.boxes):
            mask = np.zeros(frame.shape, dtype=np.uint8)
            for x1, y1, x2, y2 in record.boxes:
                x0, y0 = max(int(x1) - mask_grow, 0), max(int(y1) - mask_grow, 0)
                mask[y0 : int(math.ceil(y2)) + mask_grow, x0 : int(math.ceil(x2)) + mask_grow] = 1
            image8 = frame if bit_depth == 8 else (frame / 257.0).round().astype(np.uint8)
            painted = cv2.inpaint(image8, mask, 3, cv2.INPAINT_TELEA)
            frame = painted if bit_depth == 8 else frame.copy()
            if bit_depth == 16:
                frame[mask > 0] = painted[mask > 0].astype(np.uint16) * 257
        image = frame.astype(np.float32) / full
        if size is not None and image.shape != tuple(size):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        out.append(image)
    return np.stack(out), bit_depth
