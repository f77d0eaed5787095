"""Procedural synthetic defect benchmark in the GFDS folder layout.

The benchmark is the offline quick-start data: it needs no download, is
generated in a few seconds from a seed, and is byte-identical for the same
seed (and generator version) on the same software stack. Layout::

    <root>/<product>/images/<category>/<category>_<index:03d>.png       RGB
    <root>/<product>/ground_truth/<category>/<category>_<index:03d>.png  0/255
    <root>/meta.json
    <root>/README.md

Products:

- ``fabric``: plain-weave, optionally striped textile (DAGM-style periodic
  texture) with ``hole``, ``stain`` and ``thread`` defects;
- ``metal``: brushed, grainy anisotropic metal surface with ``crack``,
  ``scratch``, ``spot`` and ``stain`` defects;
- ``washer``: a machined grey ring on a dark conveyor (an object-like part)
  with ``crack``, ``hole`` and ``scratch`` defects, on the part only.

Masks are exact: a pixel is foreground if and only if the defect changed its
8-bit value (every defect is rendered onto a clean image and the mask is the
set of pixels that differ). Each image holds one or two instances of one
category; each mask has at least ``_MIN_AREA`` pixels at 256 x 256.

Every image draws from its own random generator seeded by
``(seed, product, category, index)``, so generating a subset of products
gives the same files as generating all of them.

Example::

    from fdseg.datasets.synthetic import generate_synthetic_benchmark
    generate_synthetic_benchmark('data/synthetic', seed=0)
"""
import fcntl
import functools
import json
import math
import os
import os.path as osp
import secrets
import shutil
import time
import zlib
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

__all__ = [
    'SYNTHETIC_PRODUCTS', 'GENERATOR_VERSION', 'generate_synthetic_benchmark',
    'ensure_synthetic_benchmark', 'render_synthetic_sample'
]

#: Bump whenever the generated pixels can change for a given seed: it is
#: recorded in ``meta.json`` and checked by :func:`ensure_synthetic_benchmark`.
GENERATOR_VERSION = '1.0'

#: product -> defect categories.
SYNTHETIC_PRODUCTS: Dict[str, List[str]] = {
    'fabric': ['hole', 'stain', 'thread'],
    'metal': ['crack', 'scratch', 'spot', 'stain'],
    'washer': ['crack', 'hole', 'scratch'],
}

_MIN_AREA = 20  # minimum mask area (pixels) at 256 x 256, scaled by area
_MIN_SIZE = 64  # below this the defects no longer fit the images
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION,
               1]  # fast; noise compresses poorly anyway


# --------------------------------------------------------------------------
# Random helpers
# --------------------------------------------------------------------------
def _rng_for(seed: int, product: str, category: str,
             index: int) -> np.random.Generator:
    """Generator of one image, independent of which others are generated."""
    # crc32 rather than hash(): str hashes are salted per process.
    entropy = [
        int(seed),
        zlib.crc32(product.encode()),
        zlib.crc32(category.encode()),
        int(index)
    ]
    return np.random.default_rng(np.random.SeedSequence(entropy))


def _smooth_noise(rng: np.random.Generator, size: int,
                  scale: float) -> np.ndarray:
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
        rng.standard_normal((size, size), dtype=np.float32), (0, 0), 0.8)
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
    ramp = ((xx * math.cos(phi) + yy * math.sin(phi)) / size - 0.5)
    grey = (
        rng.uniform(120, 150) + 14 * streak + 5 * grain +
        rng.uniform(15, 35) * ramp + 6 * _smooth_noise(rng, size, 80 * s))
    tint = (1 + rng.uniform(-0.03, 0.03, 3) +
            np.array([-0.02, 0.0, 0.03])).astype(np.float32)  # cool grey
    rgb = grey[..., None] * tint
    return dict(rgb=rgb, valid=np.ones((size, size), bool))


def _washer(rng: np.random.Generator, size: int) -> dict:
    """A machined grey ring on a darker conveyor background."""
    s = size / 256
    yy, xx = _grid(size)
    bg = (
        rng.uniform(38, 55) + 6 * _smooth_noise(rng, size, 40 * s) +
        2.5 * rng.standard_normal((size, size), dtype=np.float32))
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
        rng.uniform(150, 172) + 22 * np.cos(phi - light) +
        4 * np.sin(2 * np.pi * r / ring_p + rng.uniform(0, 2 * np.pi)) +
        3.5 * rng.standard_normal((size, size), dtype=np.float32))
    bevel = 2.5 * s
    part -= 45 * np.exp(-np.clip(r_out - r, 0, None) / bevel)
    part -= 45 * np.exp(-np.clip(r - r_in, 0, None) / bevel)
    part_rgb = part[..., None] * np.array([1.0, 0.99, 0.96], np.float32)
    # Anti-aliased silhouette.
    alpha = (np.clip(r_out - r + 0.5, 0, 1) * np.clip(r - r_in + 0.5, 0, 1))
    rgb = bg_rgb * (1 - alpha[..., None]) + part_rgb * alpha[..., None]
    # Defects stay a few pixels clear of the silhouette (and its bevel).
    margin = 3 * s
    valid = (r > r_in + margin) & (r < r_out - margin)
    return dict(
        rgb=rgb, valid=valid, bg=bg_rgb, center=(cx, cy), radii=(r_in, r_out))


_TEXTURES: Dict[str, Callable[[np.random.Generator, int], dict]] = {
    'fabric': _fabric,
    'metal': _metal,
    'washer': _washer,
}


# --------------------------------------------------------------------------
# Defect shapes. Each renderer returns (alpha float32 HxW in [0, 1], target
# HxWx3 or RGB triple): the image becomes img * (1 - alpha) + target * alpha.
# Alphas are cut to 0 below a visibility threshold, so that every pixel a
# defect touches changes visibly and the exact mask is not speckled.
# --------------------------------------------------------------------------
def _sample_center(rng: np.random.Generator, ctx: dict,
                   margin: float) -> Tuple[float, float]:
    """A point of ``valid`` at least ``margin`` pixels inside it."""
    ok = ctx['dist'] >= margin
    if not ok.any():
        ok = ctx['dist'] >= ctx['dist'].max()
    idx = np.flatnonzero(ok)
    i = int(idx[rng.integers(len(idx))])
    size = ctx['size']
    # Sub-pixel jitter so shapes do not snap to the grid.
    return (i % size + rng.uniform(-0.5, 0.5),
            i // size + rng.uniform(-0.5, 0.5))


def _draw_polyline(size: int, pts: np.ndarray, thickness: int) -> np.ndarray:
    """Anti-aliased sub-pixel polyline coverage in [0, 1]."""
    canvas = np.zeros((size, size), np.uint8)
    shift = 4  # 1/16 pixel precision
    p = np.round(pts * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [p], False, 255, thickness, cv2.LINE_AA, shift)
    return canvas.astype(np.float32) / 255


def _bezier(p0, p1, p2, n: int) -> np.ndarray:
    t = np.linspace(0, 1, n, dtype=np.float64)[:, None]
    return (1 - t)**2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _blob_radius_map(rng: np.random.Generator, ctx: dict, center, radius,
                     aspect: float, wobble: float) -> np.ndarray:
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
            rim += wobble / k * rng.uniform(
                0.5, 1.0) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
        d = d / rim
    return d


def _scratch(rng,
             ctx,
             bright: bool = True,
             length=(70, 150),
             center=None,
             angle=None):
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
    target = (np.minimum(img + 85, 255) if bright else img * 0.3)
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
        start = np.array(
            _sample_center(rng, ctx, 30 * s if ctx['full'] else 4 * s))
        heading = rng.uniform(0, 2 * np.pi)
    main, _ = walk(
        np.asarray(start, np.float64), heading, int(rng.integers(25, 45)))
    cov = _draw_polyline(size, main, 1)
    for _ in range(int(rng.integers(1, 4))):
        if len(main) < 4:
            break
        j = int(rng.integers(1, len(main) - 1))
        seg = main[j] - main[j - 1]
        th = math.atan2(seg[1],
                        seg[0]) + rng.choice([-1, 1]) * rng.uniform(0.5, 1.1)
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
    alpha += 0.1 * np.exp(-((d - 0.88) / 0.05)**2)  # tide line near the rim
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
    pts = _bezier(c - d * L / 2, c + nrm * rng.uniform(-0.35, 0.35) * L,
                  c + d * L / 2, 60)
    t = np.linspace(0, 1, len(pts))[:, None]
    wave = rng.uniform(1.0,
                       2.5) * s * np.sin(2 * np.pi * t * rng.uniform(2, 4) +
                                         rng.uniform(0, 2 * np.pi))
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
    return _scratch(
        rng, ctx, bright=True, length=(35, 70), center=c, angle=angle)


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
assert set(_DEFECTS) == {(p, c)
                         for p, cats in SYNTHETIC_PRODUCTS.items()
                         for c in cats}


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_synthetic_sample(
        product: str,
        category: str,
        index: int,
        seed: int = 0,
        image_size: int = 256) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one benchmark image.

    Args:
        product (str): A key of :data:`SYNTHETIC_PRODUCTS`.
        category (str): One of its categories.
        index (int): Image index within the category.
        seed (int): Benchmark seed.
        image_size (int): Side of the square image.

    Returns:
        tuple: ``(image, mask, clean)``: the RGB ``uint8`` image, its
        ``uint8`` mask (0 / 255) and the defect-free ``uint8`` image it was
        rendered from. ``mask`` is exactly where ``image != clean``.
    """
    _check_product_category(product, category)
    rng = _rng_for(seed, product, category, index)
    size = int(image_size)
    s = size / 256
    ctx = _TEXTURES[product](rng, size)
    valid = ctx['valid']
    full = bool(valid.all())
    # Distance to the edge of the drawable area (the image border counts).
    pad = np.zeros((size + 2, size + 2), np.uint8)
    pad[1:-1, 1:-1] = valid
    dist = cv2.distanceTransform(pad, cv2.DIST_L2, 3)[1:-1, 1:-1]
    clean = _to_uint8(ctx['rgb'])
    img = ctx['rgb'].copy()
    ctx.update(size=size, s=s, dist=dist, full=full, grid=_grid(size))
    render = _DEFECTS[(product, category)]
    min_area = max(8, int(round(_MIN_AREA * s * s)))
    n_inst = 1 + int(rng.random() < 0.35)
    placed = 0
    img8 = clean
    for _ in range(12 * n_inst):  # retries for clipped / tiny instances
        ctx['img'] = img
        alpha, target = render(rng, ctx)
        if not full:
            alpha = alpha * valid  # on the part only
        if int(np.count_nonzero(alpha)) < min_area:
            continue
        a = alpha[..., None]
        new = img * (1 - a) + np.asarray(target, np.float32) * a
        new8 = _to_uint8(new)
        if int(np.count_nonzero((new8 != img8).any(-1))) < min_area:
            continue
        img, img8 = new, new8
        placed += 1
        if placed == n_inst:
            break
    image = img8
    # Exact: foreground is every pixel whose 8-bit value the defects changed.
    mask = (image != clean).any(-1)
    if int(mask.sum()) < min_area:  # pragma: no cover - retries make this rare
        raise RuntimeError(f'could not place a {product}/{category} defect '
                           f'(seed={seed}, index={index})')
    return image, mask.astype(np.uint8) * 255, clean


# --------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------
def _check_product_category(product: str, category: str) -> None:
    if product not in SYNTHETIC_PRODUCTS:
        raise ValueError(f'unknown synthetic product {product!r}; valid '
                         f'products: {sorted(SYNTHETIC_PRODUCTS)}')
    if category not in SYNTHETIC_PRODUCTS[product]:
        raise ValueError(f'unknown category {category!r} of product '
                         f'{product!r}; valid categories: '
                         f'{SYNTHETIC_PRODUCTS[product]}')


def _normalize_products(
        products: Optional[Union[str, Sequence[str]]]) -> List[str]:
    if products is None:
        return list(SYNTHETIC_PRODUCTS)
    if isinstance(products, str):
        products = [p for p in products.split(',') if p.strip()]
    out: List[str] = []
    for p in products:
        p = str(p).strip()
        if p not in SYNTHETIC_PRODUCTS:
            raise ValueError(f'unknown synthetic product {p!r}; valid '
                             f'products: {sorted(SYNTHETIC_PRODUCTS)}')
        if p not in out:
            out.append(p)
    if not out:
        raise ValueError('no products selected; valid products: '
                         f'{sorted(SYNTHETIC_PRODUCTS)}')
    return out


def _check_args(seed, num_images, image_size) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if int(num_images) < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images!r}')
    if int(image_size) < _MIN_SIZE:
        raise ValueError(f'image_size must be >= {_MIN_SIZE}, got '
                         f'{image_size!r}')


def _is_nonempty_dir(path: str) -> bool:
    return osp.isdir(path) and bool(os.listdir(path))


def _readme(seed: int, num_images: int, image_size: int,
            summary: Dict[str, Dict[str, int]]) -> str:
    lines = [
        '# fdseg synthetic defect benchmark', '',
        'Procedurally generated few-shot industrial defect segmentation '
        'benchmark in the GFDS folder layout, written by '
        '`fdseg.datasets.synthetic.generate_synthetic_benchmark` '
        '(`tools/dataset_converters/make_synthetic_benchmark.py`). '
        'It is a quick-start / test fixture, not a substitute for real '
        'data.', '', f'- generator version: {GENERATOR_VERSION}',
        f'- seed: {seed}', f'- images per category: {num_images}',
        f'- image size: {image_size} x {image_size}', '',
        'Layout: `<product>/images/<category>/<stem>.png` (RGB) and '
        '`<product>/ground_truth/<category>/<stem>.png` (0 background, '
        '255 defect; exact: the pixels the defect changed).', '',
        '| product | categories |', '| --- | --- |'
    ]
    for p, cats in summary.items():
        lines.append(f'| {p} | ' + ', '.join(f'{c} ({n})'
                                             for c, n in cats.items()) + ' |')
    return '\n'.join(lines) + '\n'


class _Progress:
    """mmengine's ProgressBar, or nothing when progress is off."""

    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from mmengine.utils import ProgressBar
            self.bar = ProgressBar(total)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update()


def generate_synthetic_benchmark(
        out_dir: str,
        seed: int = 0,
        num_images: int = 12,
        image_size: int = 256,
        products: Optional[Union[str, Sequence[str]]] = None,
        overwrite: bool = False,
        progress: bool = True) -> Dict[str, Dict[str, int]]:
    """Generate the synthetic benchmark into ``out_dir``.

    Everything is written into a temporary sibling directory that is renamed
    to ``out_dir`` at the end, so an interrupted run never leaves a
    half-written benchmark behind.

    Args:
        out_dir (str): Benchmark root to create.
        seed (int): Non-negative seed; the same seed gives byte-identical
            files.
        num_images (int): Images per category.
        image_size (int): Side of the square images (>= 64).
        products (str | list[str], optional): Products to generate (a list
            or a comma-separated string); all of :data:`SYNTHETIC_PRODUCTS`
            when None. A product's files do not depend on which others are
            generated.
        overwrite (bool): Replace an existing non-empty ``out_dir``.
        progress (bool): Show a progress bar.

    Returns:
        dict: ``{product: {category: number of images}}``.

    Raises:
        FileExistsError: ``out_dir`` exists, is not empty (or is not a
            directory) and ``overwrite`` is False.
        ValueError: An unknown product or an invalid argument.
    """
    _check_args(seed, num_images, image_size)
    products = _normalize_products(products)
    seed, num_images, image_size = int(seed), int(num_images), int(image_size)
    out_dir = osp.abspath(osp.expanduser(str(out_dir)))
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        raise FileExistsError(f'{out_dir} exists and is not a directory')
    if _is_nonempty_dir(out_dir) and not overwrite:
        raise FileExistsError(f'{out_dir} exists and is not empty; pass '
                              'overwrite=True (--overwrite) to replace it')

    parent, base = osp.split(out_dir)
    os.makedirs(parent, exist_ok=True)
    token = f'{os.getpid()}-{secrets.token_hex(4)}'
    # A sibling (same filesystem) so the final rename is atomic; makedirs
    # (unlike mkdtemp) honours the umask, so the result is not mode 0700.
    tmp = osp.join(parent, f'.{base}.tmp-{token}')
    os.makedirs(tmp)
    summary: Dict[str, Dict[str, int]] = {}
    total = sum(len(SYNTHETIC_PRODUCTS[p]) for p in products) * num_images
    t0 = time.perf_counter()
    if progress:
        print(
            f'Generating the synthetic benchmark (seed={seed}, '
            f'{total} images) into {out_dir}',
            flush=True)
    try:
        bar = _Progress(total, progress)
        for product in products:
            summary[product] = {}
            for category in SYNTHETIC_PRODUCTS[product]:
                idir = osp.join(tmp, product, 'images', category)
                gdir = osp.join(tmp, product, 'ground_truth', category)
                os.makedirs(idir)
                os.makedirs(gdir)
                for i in range(num_images):
                    image, mask, _ = render_synthetic_sample(
                        product, category, i, seed, image_size)
                    stem = f'{category}_{i:03d}'
                    _imwrite(
                        osp.join(idir, stem + '.png'),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                    _imwrite(osp.join(gdir, stem + '.png'), mask)
                    bar.update()
                summary[product][category] = num_images
        meta = dict(
            generator='fdseg.datasets.synthetic',
            version=GENERATOR_VERSION,
            seed=seed,
            num_images=num_images,
            image_size=image_size,
            products=summary,
            mask='0 background, 255 defect (exact)')
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        with open(osp.join(tmp, 'README.md'), 'w') as f:
            f.write(_readme(seed, num_images, image_size, summary))
        _move_into_place(tmp, out_dir, overwrite, token)
    finally:
        if osp.exists(tmp):  # failed or interrupted: leave nothing behind
            shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        n = sum(sum(c.values()) for c in summary.values())
        print(
            f'\nWrote {n} images in {time.perf_counter() - t0:.1f} s to '
            f'{out_dir}',
            flush=True)
    return summary


def _imwrite(path: str, img: np.ndarray) -> None:
    if not cv2.imwrite(path, img, _PNG_PARAMS):
        raise OSError(f'could not write {path}')


def _move_into_place(tmp: str, out_dir: str, overwrite: bool,
                     token: str) -> None:
    """Rename ``tmp`` to ``out_dir`` (replacing it when allowed)."""
    # Checked again: another process may have written out_dir meanwhile.
    if osp.isdir(out_dir) and not osp.islink(out_dir):
        if os.listdir(out_dir):
            if not overwrite:
                raise FileExistsError(f'{out_dir} exists and is not empty; '
                                      'pass overwrite=True (--overwrite) to '
                                      'replace it')
            parent, base = osp.split(out_dir)
            old = osp.join(parent, f'.{base}.old-{token}')
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
            return
        os.rmdir(out_dir)
    elif osp.lexists(out_dir):
        if not overwrite:
            raise FileExistsError(f'{out_dir} exists and is not a directory')
        os.remove(out_dir)
    os.replace(tmp, out_dir)


def ensure_synthetic_benchmark(
        out_dir: str,
        seed: int = 0,
        num_images: int = 12,
        image_size: int = 256,
        products: Optional[Union[str, Sequence[str]]] = None,
        progress: bool = True) -> Dict[str, Dict[str, int]]:
    """Generate the benchmark unless ``out_dir`` already holds it.

    Safe to call from several processes at once (e.g. distributed ranks on
    a shared filesystem): an exclusive ``fcntl.flock`` on ``<out_dir>.lock``
    lets one of them generate while the others wait and then reuse it.

    Args:
        out_dir (str): Benchmark root.
        seed (int): Generator seed.
        num_images (int): Images per category.
        image_size (int): Image side.
        products (str | list[str], optional): Products that must be present;
            all when None.
        progress (bool): Show a progress bar when generating.

    Returns:
        dict: ``{product: {category: number of images}}`` of the benchmark
        on disk.

    Raises:
        ValueError: ``out_dir/meta.json`` records a different seed,
            generator version, image size or image count, or lacks a
            requested product.
        FileExistsError: ``out_dir`` is not empty but has no ``meta.json``
            (not a synthetic benchmark: it is not overwritten).
    """
    _check_args(seed, num_images, image_size)
    wanted = _normalize_products(products)
    out_dir = osp.abspath(osp.expanduser(str(out_dir)))
    meta_path = osp.join(out_dir, 'meta.json')
    # meta.json appears atomically with the whole benchmark, so an existing
    # one needs no lock (and a read-only data folder works).
    if not osp.isfile(meta_path):
        os.makedirs(osp.dirname(out_dir), exist_ok=True)
        with open(out_dir + '.lock', 'a') as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            try:
                # Checked again: another process may have generated it while
                # this one waited for the lock.
                if not osp.isfile(meta_path):
                    return generate_synthetic_benchmark(
                        out_dir,
                        seed=seed,
                        num_images=num_images,
                        image_size=image_size,
                        products=wanted,
                        overwrite=False,
                        progress=progress)
            finally:
                fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
    with open(meta_path) as f:
        meta = json.load(f)
    expected = dict(
        version=GENERATOR_VERSION,
        seed=int(seed),
        num_images=int(num_images),
        image_size=int(image_size))
    diff = {
        k: (meta.get(k), v)
        for k, v in expected.items() if meta.get(k) != v
    }
    have = meta.get('products') or {}
    missing = [p for p in wanted if p not in have]
    if diff or missing:
        details = [
            f'{k}={got!r} (wanted {want!r})'
            for k, (got, want) in diff.items()
        ]
        if missing:
            details.append(f'products {sorted(have)} (missing {missing})')
        raise ValueError(
            f'{out_dir} holds a synthetic benchmark generated with different '
            f'settings: {", ".join(details)}. Delete it, regenerate it with '
            'tools/dataset_converters/make_synthetic_benchmark.py '
            '--overwrite, or point data_root elsewhere.')
    return {p: dict(have[p]) for p in wanted}
