"""Synthetic infrared video generator: the embedded default data set (demos, tests, benchmarks).

A sequence is a physically motivated infrared scene (`background`: sky, fractal clouds with bright
edges, optional horizon and ground, camera pan/jitter, optics; `sensor`: fixed-pattern and temporal
sensor noise, dead/hot pixels) with small moving targets (`targets`) added before the sensor noise.
Semi-synthetic mode replaces the simulated background by real infrared footage (whose own annotated
target is first painted out) and adds the same simulated targets.

Targets. Each target (a track) is a Gaussian point-spread blob with per-axis sigmas in
`sigma_range` (pixel-integrated, so sub-pixel positions render exactly), moving on a smooth path
(constant speed, slowly turning heading) plus the camera motion. Some tracks cross the frame border
(entering or leaving); a block of `empty_frame_fraction * M` consecutive frames per sequence shows
no target at all (the targets are "not there", e.g. behind the horizon), and `min_targets = 0` gives
sequences with no target.

Boxes. A target at sub-pixel centre `(cx, cy)` (pixel `(i, j)` covers `[j, j+1) x [i, i+1)`) with
sigmas `(sx, sy)` has the box `[cx - hx, cy - hy, cx + hx, cy + hy]` with `hx = 2 sx + box_margin`,
`hy = 2 sy + box_margin` (the +-2 sigma extent plus a margin, default 1 px: 4 px boxes for
sigma 0.5, 10 px for sigma 2), xyxy float pixels, clipped to the image. A partly visible target is
labelled only if its clipped box keeps at least `min_visible_fraction` of its area, both clipped
sides are at least `min_visible_size` px and its centre pixel is inside the image; otherwise it is
still rendered but carries no box (as in real data, where border targets are often unlabelled).

Signal-to-clutter ratio (SCR), as written into `synth.yaml` and checked by the tests::

    SCR = (I[floor(cy), floor(cx)] - mean(ring)) / max(std(ring), 1/255 full scale)

measured on the output frame (quantised, with noise). `I[...]` is the pixel holding the box centre
(the brightest pixel of the target's pixel-integrated PSF). The ring is the square annulus between
the box grown by `SCR_RING_GAP` (2) px and the box grown by `SCR_RING_GAP + SCR_RING_WIDTH` (7) px,
clipped to the image, excluding other targets' grown boxes. The std floor of one 8-bit grey level
keeps SCR bounded on flat quantised backgrounds (a black sky in real 8-bit video). The generator
draws a wanted SCR per track (slowly varying in `scr_range`) and solves for the target amplitude so
that the centre pixel hits `mean + SCR * std` exactly after noise; the measured SCR then differs
from the wanted one only by quantisation (at most 0.5 grey level / std, <= 0.5 at 8 bits, ~0 at 16),
PSF leakage into the ring (< 0.3 % of the peak at 2 px gap) and, rarely, when the centre pixel's
background is already brighter than the wanted peak (a target on a bright cloud edge: the SCR is
then higher; `FrameTruth.clutter_dominated` flags it) or the peak saturates (flagged `saturated`).

Output layout (`write_synthetic_dataset`, the CLI `mistd data synth`)::

    DIR/images/seq000/0.png ...    8- or 16-bit single-channel PNG frames
    DIR/coco.json                  COCO ground truth (category 1 = target, empty frames included)
    DIR/uestc.txt                  UESTC txt index (integer boxes)
    DIR/synth.yaml                 every parameter (seed, preset, config) and per-target SCR stats
    DIR/README.md                  this box and SCR definition, for people who find the folder
    DIR/preview.png                contact sheet (optional)

Reproducibility: sequence `i` uses `numpy.random.SeedSequence(seed).spawn(sequences)[i]`, so each
sequence can be regenerated (or generated in parallel) on its own; same seed -> same bytes.

Modules: `config` (`SynthConfig`, presets, `preset_config`, `parse_size`), `background` (scene
model, real footage for the semi-synthetic mode), `sensor` (gain, noise, defects, quantisation),
`targets` (tracks, PSF, boxes, visibility), `scr` (SCR measurement), `generate`
(`generate_sequence`, `sequence_rngs`), `writer` (`write_synthetic_dataset`).
"""
