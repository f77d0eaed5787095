"""Defect renderers of the synthetic benchmark, one per (product, category)."""

import math
from typing import Callable, Dict, List, Tuple

import cv2
import numpy as np

from .textures import _smooth_noise

#: product -> defect categories.
SYNTHETIC_PRODUCTS: Dict[str, List[str]] = {
    'fabric': ['hole', 'stain', 'thread'],
    'metal': ['crack', 'scratch', 'spot', 'stain'],
    'washer': ['crack', 'hole', 'scratch'],
}


# --------------------------------------------------------------------------
# Defect shapes. Each renderer returns (alpha float32 HxW in [0, 1], target
# HxWx3 or RGB triple): the image becomes img * (1 - alpha) + target * alpha.
# Alphas are cut to 0 below a visibility threshold, so that every pixel a
# defect touches changes visibly and the exact mask is not speckled.
# --------------------------------------------------------------------------
def _sample_center(
    rng: np.random.Generator, ctx: dict, margin: float
) -> Tuple[float, float]:
    """A point of ``valid`` at least ``margin`` pixels inside it."""
    ok = ctx['dist'] >= margin
    if not ok.any():
        ok = ctx['dist'] >= ctx['dist'].max()
    idx = np.flatnonzero(ok)
    i = int(idx[rng.integers(len(idx))])
    size = ctx['size']
    # Sub-pixel jitter so shapes do not snap to the grid.
    return (i % size + rng.uniform(-0.5, 0.5), i // size + rng.uniform(-0.5, 0.5))


def _draw_polyline(size: int, pts: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased sub-pixel polyline coverage in [0, 1]."""
    canvas = np.zeros((size, size), np.uint8)
    shift = 4  # 1/16 pixel precision
    p = np.round(pts * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [p], False, 255, thickness, cv2.LINE_AA, shift)
    return canvas.astype(np.float32) / 255


def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n, dtype=np.float64)[:, None]
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _blob_radius_map(
    rng: np.random.Generator, ctx: dict, center, radius, aspect: float, wobble: float
) -> np.ndarray:
    """Normalised distance (1 on the rim) of an irregular ellipse."""
    yy, xx = ctx['grid']
    ang = rng.uniform(0, np.pi)
    dx, dy = xx - center[0], yy - center[1]
    a = dx * math.cos(ang) + dy * math.sin(ang)
    b = (-dx * math.sin(ang) + dy * math.cos(ang)) / aspect
    d = np.hypot(a, b) / radius
    if wobble > 0:
        # A few random harmonics of the polar angle make the rim irregular.
        theta = np.arctan2(b, a)
        rim = np.ones_like(d)
        for k in (2, 3, 5):
            rim += (
                wobble
                / k
                * rng.uniform(0.5, 1.0)
                * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
            )
        d = d / rim
    return d


def _scratch(rng, ctx, bright: bool = True, length=(70, 150), center=None, angle=None):
    """Thin, long, gently curved line (bright: a specular scratch)."""
    s, size = ctx['s'], ctx['size']
    L = rng.uniform(*length) * s
    if center is None:
        center = _sample_center(rng, ctx, 0.25 * L)
    c = np.asarray(center, np.float64)
    ang = rng.uniform(0, np.pi) if angle is None else angle
    d = np.array([math.cos(ang), math.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    bend = rng.uniform(-0.18, 0.18) * L
    pts = _bezier(c - d * L / 2, c + nrm * bend, c + d * L / 2, 40)
    cov = _draw_polyline(size, pts, 1 if s < 1.5 else 2)
    alpha = 0.9 * cov
    alpha[alpha < 0.3] = 0
    img = ctx['img']
    target = np.minimum(img + 85, 255) if bright else img * 0.3
    return alpha, target


def _crack(rng, ctx, start=None, heading=None):
    """Branching random-walk thin dark line."""
    s, size = ctx['s'], ctx['size']
    dist = ctx['dist']
    step = max(2.0 * s, 1.0)

    def walk(p, th, n):
        pts = [p.copy()]
        dev = 0.0
        for _ in range(n):
            # Jagged (mean-reverting heading deviation) around a slowly
            # drifting main direction, so cracks zigzag but do not curl up.
            th += rng.normal(0, 0.06)
            dev = 0.5 * dev + rng.normal(0, 0.45)
            p = p + step * np.array([math.cos(th + dev), math.sin(th + dev)])
            xi, yi = int(round(p[0])), int(round(p[1]))
            if not (0 <= xi < size and 0 <= yi < size) or dist[yi, xi] < 1.5:
                break
            pts.append(p.copy())
        return np.array(pts), th

    if start is None:
        start = np.array(_sample_center(rng, ctx, 30 * s if ctx['full'] else 4 * s))
        heading = rng.uniform(0, 2 * np.pi)
    main, _ = walk(np.asarray(start, np.float64), heading, int(rng.integers(25, 45)))
    cov = _draw_polyline(size, main, 1)
    for _ in range(int(rng.integers(1, 4))):
        if len(main) < 4:
            break
        j = int(rng.integers(1, len(main) - 1))
        seg = main[j] - main[j - 1]
        th = math.atan2(seg[1], seg[0]) + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
        branch, _ = walk(main[j], th, int(rng.integers(5, 16)))
        if len(branch) > 1:
            cov = np.maximum(cov, _draw_polyline(size, branch, 1))
    alpha = 0.92 * cov
    alpha[alpha < 0.35] = 0
    return alpha, ctx['img'] * 0.22


def _spot(rng, ctx):
    """Small dark round blob with a soft rim (pit / corrosion spot)."""
    s = ctx['s']
    radius = max(rng.uniform(3.5, 7.0) * s, 2.5)  # >= ~12 px when small
    c = _sample_center(rng, ctx, radius + 3 * s)
    d = _blob_radius_map(rng, ctx, c, radius, rng.uniform(0.75, 1.0), 0.12)
    alpha = np.clip(1.6 * (1 - d**2), 0, 0.95).astype(np.float32)
    alpha[alpha < 0.25] = 0
    return alpha, np.array([38, 32, 28], np.float32)


def _stain(rng, ctx, tint):
    """Large, soft, low-contrast colour-shifted blob with a faint tide line."""
    s = ctx['s']
    radius = max(rng.uniform(18, 34) * s, 5.0)
    c = _sample_center(rng, ctx, radius * 1.2)
    d = _blob_radius_map(rng, ctx, c, radius, rng.uniform(0.6, 1.0), 0.35)
    # Flat interior with a soft outer rim, modulated by smooth noise; the cut
    # below depends on the rim profile only, so the mask has no pinholes.
    profile = np.clip((1 - d) / 0.3, 0, 1)
    mod = np.clip(1 + 0.15 * _smooth_noise(rng, ctx['size'], 10 * s), 0.7, 1.3)
    alpha = 0.55 * profile * mod
    alpha += 0.1 * np.exp(-(((d - 0.88) / 0.05) ** 2))  # tide line near the rim
    alpha = np.clip(alpha, 0, 0.75).astype(np.float32)
    alpha[profile < 0.4] = 0
    return alpha, ctx['img'] * np.asarray(tint, np.float32)


def _fabric_hole(rng, ctx):
    """Ragged dark hole through the cloth."""
    s = ctx['s']
    radius = max(rng.uniform(5, 10) * s, 2.5)
    c = _sample_center(rng, ctx, radius * 1.6)
    d = _blob_radius_map(rng, ctx, c, radius, rng.uniform(0.6, 1.0), 0.3)
    alpha = np.clip((1 - d) * radius + 0.5, 0, 1).astype(np.float32)
    alpha[alpha < 0.5] = 0
    backing = np.array([22, 19, 17], np.float32) * rng.uniform(0.8, 1.2)
    return alpha, backing


def _thread(rng, ctx):
    """Loose thread: a bright, wavy, 2 px wide fibre lying on the cloth."""
    s, size = ctx['s'], ctx['size']
    L = rng.uniform(55, 110) * s
    c = np.array(_sample_center(rng, ctx, 0.3 * L))
    ang = rng.uniform(0, np.pi)
    d = np.array([math.cos(ang), math.sin(ang)])
    nrm = np.array([-d[1], d[0]])
    pts = _bezier(
        c - d * L / 2, c + nrm * rng.uniform(-0.35, 0.35) * L, c + d * L / 2, 60
    )
    t = np.linspace(0, 1, len(pts))[:, None]
    wave = (
        rng.uniform(1.0, 2.5)
        * s
        * np.sin(2 * np.pi * t * rng.uniform(2, 4) + rng.uniform(0, 2 * np.pi))
    )
    pts = pts + wave * nrm
    cov = _draw_polyline(size, pts, max(2, int(round(2 * s))))
    alpha = 0.9 * cov
    alpha[alpha < 0.3] = 0
    return alpha, np.array([238, 234, 222], np.float32)


def _washer_hole(rng, ctx):
    """Round through-hole in the ring: the conveyor shows through."""
    s = ctx['s']
    radius = max(rng.uniform(5, 9) * s, 2.5)
    c = _sample_center(rng, ctx, radius + 2 * s)
    d = _blob_radius_map(rng, ctx, c, radius, 1.0, 0.0)
    alpha = np.clip((1 - d) * radius + 0.5, 0, 1).astype(np.float32)
    alpha[alpha < 0.5] = 0
    return alpha, ctx['bg'] * 0.8  # the hole's wall shades the background


def _washer_crack(rng, ctx):
    """Radial crack running in from the inner or the outer edge."""
    s = ctx['s']
    cx, cy = ctx['center']
    r_in, r_out = ctx['radii']
    phi = rng.uniform(0, 2 * np.pi)
    inner = rng.random() < 0.5
    r0 = r_in + 4 * s if inner else r_out - 4 * s
    start = (cx + r0 * math.cos(phi), cy + r0 * math.sin(phi))
    heading = phi if inner else phi + np.pi
    return _crack(rng, ctx, start=start, heading=heading + rng.normal(0, 0.3))


def _washer_scratch(rng, ctx):
    """Shorter bright scratch, mostly tangential to the ring."""
    cx, cy = ctx['center']
    c = _sample_center(rng, ctx, 6 * ctx['s'])
    # Tangential: perpendicular to the radius at its centre.
    angle = math.atan2(c[1] - cy, c[0] - cx) + np.pi / 2 + rng.normal(0, 0.35)
    return _scratch(rng, ctx, bright=True, length=(35, 70), center=c, angle=angle)


_DEFECTS: Dict[Tuple[str, str], Callable] = {
    ('fabric', 'hole'): _fabric_hole,
    ('fabric', 'stain'): lambda rng, ctx: _stain(rng, ctx, (0.86, 0.76, 0.58)),
    ('fabric', 'thread'): _thread,
    ('metal', 'crack'): _crack,
    ('metal', 'scratch'): _scratch,
    ('metal', 'spot'): _spot,
    ('metal', 'stain'): lambda rng, ctx: _stain(rng, ctx, (1.1, 0.82, 0.6)),
    ('washer', 'crack'): _washer_crack,
    ('washer', 'hole'): _washer_hole,
    ('washer', 'scratch'): _washer_scratch,
}
assert set(_DEFECTS) == {(p, c) for p, cats in SYNTHETIC_PRODUCTS.items() for c in cats}
