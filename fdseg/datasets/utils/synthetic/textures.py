"""Clean textures and parts of the synthetic benchmark, and its random helpers.

Each texture returns a dict with ``rgb`` (float32 HxWx3 in 0..255) and
``valid`` (bool HxW: where defects may be drawn), plus what the defect
renderers of that product need.
"""

import functools
import math
import zlib
from typing import Callable, Dict, Tuple

import cv2
import numpy as np


# --------------------------------------------------------------------------
# Random helpers
# --------------------------------------------------------------------------
def _rng_for(seed: int, product: str, category: str, index: int) -> np.random.Generator:
    """Generator of one image, independent of which others are generated."""
    # crc32 rather than hash(): str hashes are salted per process.
    entropy = [
        int(seed),
        zlib.crc32(product.encode()),
        zlib.crc32(category.encode()),
        int(index),
    ]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _smooth_noise(rng: np.random.Generator, size: int, scale: float) -> np.ndarray:
    """Zero-mean, unit-std noise with features of about ``scale`` pixels."""
    # Upsampling a coarse grid is much cheaper than a wide Gaussian blur.
    n = max(2, int(math.ceil(size / max(scale, 1.0))) + 1)
    coarse = rng.standard_normal((n, n), dtype=np.float32)
    big = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    return (big - big.mean()) / (big.std() + 1e-6)


@functools.lru_cache(maxsize=4)
def _grid(size: int) -> Tuple[np.ndarray, np.ndarray]:
    """Read-only ``(yy, xx)`` pixel coordinates (cached: used per image)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    yy.flags.writeable = False
    xx.flags.writeable = False
    return yy, xx


# --------------------------------------------------------------------------
# Clean textures / parts. Each returns (rgb float32 HxWx3 in 0..255, valid),
# where ``valid`` (bool HxW) is where defects may be drawn.
# --------------------------------------------------------------------------
def _fabric(rng: np.random.Generator, size: int) -> dict:
    """Plain-weave textile with optional colour stripes."""
    s = size / 256
    yy, xx = _grid(size)
    ang = rng.uniform(-0.1, 0.1)  # slight misalignment of the weave
    period = rng.uniform(7.0, 9.5) * s
    u = xx * math.cos(ang) + yy * math.sin(ang) + rng.uniform(0, 2 * period)
    v = -xx * math.sin(ang) + yy * math.cos(ang) + rng.uniform(0, 2 * period)
    cu, cv = np.floor(u / period), np.floor(v / period)
    fu, fv = u / period - cu, v / period - cv  # position inside the cell
    # Warp threads lie on top in even cells, weft threads in odd ones; a
    # thread is bright in its middle and dips where it goes under.
    over = ((cu + cv) % 2) == 0
    su, sv = np.sin(np.pi * fu), np.sin(np.pi * fv)
    warp = np.sqrt(su) * (0.7 + 0.3 * sv)
    weft = np.sqrt(sv) * (0.7 + 0.3 * su)
    weave = np.where(over, warp, weft)
    # Fibre noise along the threads and slow dye non-uniformity.
    fibre = cv2.GaussianBlur(
        rng.standard_normal((size, size), dtype=np.float32), (0, 0), 0.8
    )
    fibre /= fibre.std() + 1e-6
    lowfreq = _smooth_noise(rng, size, 64 * s)

    base = np.array([178, 156, 124], np.float32)  # beige
    base = base * rng.uniform(0.9, 1.1) + rng.uniform(-10, 10, 3)
    colour = np.broadcast_to(base, (size, size, 3)).astype(np.float32)
    if rng.random() < 0.6:  # striped cloth: every k-th band of warp cells
        k = int(rng.integers(3, 6))
        band = (np.floor(cu / k) % 2 == 1)[..., None]
        stripe = base * rng.uniform(0.72, 0.85, 3).astype(np.float32)
        colour = np.where(band, stripe, colour)
    shade = 0.55 + 0.45 * weave + 0.035 * fibre + 0.03 * lowfreq
    rgb = colour * shade[..., None]
    rgb += 3.0 * rng.standard_normal((size, size, 3), dtype=np.float32)
    return dict(rgb=rgb, valid=np.ones((size, size), bool))


def _metal(rng: np.random.Generator, size: int) -> dict:
    """Brushed metal: streaks along one direction, grain and shading."""
    s = size / 256
    big = int(size * 1.5)
    n = rng.standard_normal((big, big), dtype=np.float32)
    # Anisotropic blur makes the brushing streaks; rotating it (by a random
    # angle, sometimes near 90 deg) varies the grain direction per image.
    n = cv2.GaussianBlur(n, (0, 0), sigmaX=14 * s, sigmaY=0.7 * s)
    angle = rng.uniform(-20, 20) + (90.0 if rng.random() < 0.3 else 0.0)
    m = cv2.getRotationMatrix2D((big / 2, big / 2), angle, 1.0)
    m[:, 2] -= (big - size) / 2  # crop the centre
    streak = cv2.warpAffine(n, m, (size, size), flags=cv2.INTER_LINEAR)
    streak = (streak - streak.mean()) / (streak.std() + 1e-6)
    grain = rng.standard_normal((size, size), dtype=np.float32)
    yy, xx = _grid(size)
    phi = rng.uniform(0, 2 * np.pi)
    ramp = (xx * math.cos(phi) + yy * math.sin(phi)) / size - 0.5
    grey = (
        rng.uniform(120, 150)
        + 14 * streak
        + 5 * grain
        + rng.uniform(15, 35) * ramp
        + 6 * _smooth_noise(rng, size, 80 * s)
    )
    tint = (1 + rng.uniform(-0.03, 0.03, 3) + np.array([-0.02, 0.0, 0.03])).astype(
        np.float32
    )  # cool grey
    rgb = grey[..., None] * tint
    return dict(rgb=rgb, valid=np.ones((size, size), bool))


def _washer(rng: np.random.Generator, size: int) -> dict:
    """A machined grey ring on a darker conveyor background."""
    s = size / 256
    yy, xx = _grid(size)
    bg = (
        rng.uniform(38, 55)
        + 6 * _smooth_noise(rng, size, 40 * s)
        + 2.5 * rng.standard_normal((size, size), dtype=np.float32)
    )
    bg_rgb = bg[..., None] * np.array([0.95, 1.0, 1.08], np.float32)

    cx = size / 2 + rng.uniform(-10, 10) * s
    cy = size / 2 + rng.uniform(-10, 10) * s
    r_out = rng.uniform(98, 112) * s
    r_in = rng.uniform(36, 48) * s
    r = np.hypot(xx - cx, yy - cy)
    phi = np.arctan2(yy - cy, xx - cx)
    # Directional light, fine turning marks, a darker bevel at both edges.
    light = rng.uniform(0, 2 * np.pi)
    ring_p = rng.uniform(2.5, 4.0) * s
    part = (
        rng.uniform(150, 172)
        + 22 * np.cos(phi - light)
        + 4 * np.sin(2 * np.pi * r / ring_p + rng.uniform(0, 2 * np.pi))
        + 3.5 * rng.standard_normal((size, size), dtype=np.float32)
    )
    bevel = 2.5 * s
    part -= 45 * np.exp(-np.clip(r_out - r, 0, None) / bevel)
    part -= 45 * np.exp(-np.clip(r - r_in, 0, None) / bevel)
    part_rgb = part[..., None] * np.array([1.0, 0.99, 0.96], np.float32)
    # Anti-aliased silhouette.
    alpha = np.clip(r_out - r + 0.5, 0, 1) * np.clip(r - r_in + 0.5, 0, 1)
    rgb = bg_rgb * (1 - alpha[..., None]) + part_rgb * alpha[..., None]
    # Defects stay a few pixels clear of the silhouette (and its bevel).
    margin = 3 * s
    valid = (r > r_in + margin) & (r < r_out - margin)
    return dict(rgb=rgb, valid=valid, bg=bg_rgb, center=(cx, cy), radii=(r_in, r_out))


_TEXTURES: Dict[str, Callable[[np.random.Generator, int], dict]] = {
    'fabric': _fabric,
    'metal': _metal,
    'washer': _washer,
}
