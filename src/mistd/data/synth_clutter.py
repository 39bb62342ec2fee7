"""Background and sensor models for the synthetic infrared video generator (`mistd.data.synth`).

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
- **Optics**: a small Gaussian blur, then vignetting (radial gain fall-off).
- **Sensor**: per-pixel gain non-uniformity (PRNU), column and row fixed-pattern offsets, Gaussian
  read noise plus signal-dependent shot noise (variance `read^2 + shot_gain * signal`), and a fixed
  set of dead (dark) and hot (bright) pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.special import ndtri


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
    """Drawn (per sequence) values of the background and sensor model; see the module docstring.

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
    vignetting: float
    prnu: float
    column_fpn: float
    row_fpn: float
    read_noise: float
    shot_gain: float
    defect_fraction: float


class SceneModel:
    """A sequence's background: static world canvases plus per-frame camera and cloud motion.

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

        # Sensor: fixed per sequence (it is the same camera for all frames).
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2
        gain = (1.0 - p.vignetting * r2 / 2.0) * (1.0 + p.prnu * rng.standard_normal((h, w)))
        self.gain = gain.astype(np.float32)
        offset = p.column_fpn * rng.standard_normal((1, w)) + p.row_fpn * rng.standard_normal(
            (h, 1)
        )
        self.offset = offset.astype(np.float32)
        num_defects = int(rng.binomial(h * w, p.defect_fraction)) if p.defect_fraction > 0 else 0
        flat = rng.choice(h * w, size=num_defects, replace=False) if num_defects else np.zeros(0)
        self.defect_rows, self.defect_cols = np.divmod(flat.astype(np.int64), w)
        hot = rng.random(num_defects) < 0.6
        self.defect_values = np.where(
            hot, rng.uniform(0.75, 1.0, num_defects), rng.uniform(0.0, 0.08, num_defects)
        ).astype(np.float32)

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

    def sensor_clean(self, radiance: np.ndarray) -> np.ndarray:
        """Expected sensor signal (gain, vignetting, fixed-pattern offsets), `[H, W]` float32."""
        return radiance * self.gain + self.offset

    def sensor_noise_std(self, signal: np.ndarray) -> np.ndarray:
        """Per-pixel temporal noise std for a given expected signal (read + shot noise)."""
        p = self.params
        return np.sqrt(p.read_noise**2 + p.shot_gain * np.clip(signal, 0.0, None))

    def apply_defects(self, frame: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
        """Overwrite dead/hot pixels in `frame` (in place) except where `keep` is True."""
        if self.defect_rows.size:
            values = self.defect_values
            rows, cols = self.defect_rows, self.defect_cols
            if keep is not None:
                ok = ~keep[rows, cols]
                rows, cols, values = rows[ok], cols[ok], values[ok]
            frame[rows, cols] = values
        return frame
