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

    from fdseg.datasets.utils.synthetic import generate_synthetic_benchmark
    generate_synthetic_benchmark('data/synthetic', seed

Modules: :mod:`.textures` (clean surfaces), :mod:`.defects` (renderers and
:data:`SYNTHETIC_PRODUCTS`), :mod:`.writer` (atomic folder, lock, PNG) and
this one (one sample, the whole benchmark).
"""

import json
import os
import os.path as osp
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from .defects import _DEFECTS, SYNTHETIC_PRODUCTS
from .textures import _TEXTURES, _grid, _rng_for
from .writer import file_lock, imwrite_png, is_nonempty_dir, staging_dir

__all__ = [
    'SYNTHETIC_PRODUCTS',
    'GENERATOR_VERSION',
    'generate_synthetic_benchmark',
    'ensure_synthetic_benchmark',
    'render_synthetic_sample',
]

#: Bump whenever the generated pixels can change for a given seed: it is
#: recorded in ``meta.json`` and checked by :func:`ensure_synthetic_benchmark`.
GENERATOR_VERSION = '1.0'

_MIN_AREA = 20  # minimum mask area (pixels) at 256 x 256, scaled by area
_MIN_SIZE = 64  # below this the defects no longer fit the images


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def render_synthetic_sample(
    product: str, category: str, index: int, seed: int = 0, image_size: int = 256
) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
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
        raise RuntimeError(
            f'could not place a {product}/{category} defect '
            f'(seed={seed}, index={index})'
        )
    return image, mask.astype(np.uint8) * 255, clean


def _check_product_category(product: str, category: str) -> None:
    if product not in SYNTHETIC_PRODUCTS:
        raise ValueError(
            f'unknown synthetic product {product!r}; valid '
            f'products: {sorted(SYNTHETIC_PRODUCTS)}'
        )
    if category not in SYNTHETIC_PRODUCTS[product]:
        raise ValueError(
            f'unknown category {category!r} of product '
            f'{product!r}; valid categories: '
            f'{SYNTHETIC_PRODUCTS[product]}'
        )


def _normalize_products(products: Optional[Union[str, Sequence[str]]]) -> List[str]:
    if products is None:
        return list(SYNTHETIC_PRODUCTS)
    if isinstance(products, str):
        products = [p for p in products.split(',') if p.strip()]
    out: List[str] = []
    for p in products:
        p = str(p).strip()
        if p not in SYNTHETIC_PRODUCTS:
            raise ValueError(
                f'unknown synthetic product {p!r}; valid '
                f'products: {sorted(SYNTHETIC_PRODUCTS)}'
            )
        if p not in out:
            out.append(p)
    if not out:
        raise ValueError(
            f'no products selected; valid products: {sorted(SYNTHETIC_PRODUCTS)}'
        )
    return out


def _check_args(seed, num_images, image_size) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    if int(num_images) < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images!r}')
    if int(image_size) < _MIN_SIZE:
        raise ValueError(f'image_size must be >= {_MIN_SIZE}, got {image_size!r}')


def _readme(
    seed: int, num_images: int, image_size: int, summary: Dict[str, Dict[str, int]]
) -> str:
    lines = [
        '# fdseg synthetic defect benchmark',
        '',
        'Procedurally generated few-shot industrial defect segmentation '
        'benchmark in the GFDS folder layout, written by '
        '`fdseg.datasets.synthetic.generate_synthetic_benchmark` '
        '(`tools/dataset_converters/make_synthetic_benchmark.py`). '
        'It is a quick-start / test fixture, not a substitute for real '
        'data.',
        '',
        f'- generator version: {GENERATOR_VERSION}',
        f'- seed: {seed}',
        f'- images per category: {num_images}',
        f'- image size: {image_size} x {image_size}',
        '',
        'Layout: `<product>/images/<category>/<stem>.png` (RGB) and '
        '`<product>/ground_truth/<category>/<stem>.png` (0 background, '
        '255 defect; exact: the pixels the defect changed).',
        '',
        '| product | categories |',
        '| --- | --- |',
    ]
    for p, cats in summary.items():
        lines.append(
            f'| {p} | ' + ', '.join(f'{c} ({n})' for c, n in cats.items()) + ' |'
        )
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
    progress: bool = True,
) -> Dict[str, Dict[str, int]]:
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
    if is_nonempty_dir(out_dir) and not overwrite:
        raise FileExistsError(
            f'{out_dir} exists and is not empty; pass '
            'overwrite=True (--overwrite) to replace it'
        )

    summary: Dict[str, Dict[str, int]] = {}
    total = sum(len(SYNTHETIC_PRODUCTS[p]) for p in products) * num_images
    t0 = time.perf_counter()
    with staging_dir(out_dir, overwrite) as tmp:
        if progress:
            print(
                f'Generating the synthetic benchmark (seed={seed}, '
                f'{total} images) into {out_dir}',
                flush=True,
            )
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
                        product, category, i, seed, image_size
                    )
                    stem = f'{category}_{i:03d}'
                    imwrite_png(
                        osp.join(idir, stem + '.png'),
                        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    )
                    imwrite_png(osp.join(gdir, stem + '.png'), mask)
                    bar.update()
                summary[product][category] = num_images
        meta = dict(
            # The original module path: recorded in meta.json, which stays
            # byte-identical (the old path still imports).
            generator='fdseg.datasets.synthetic',
            version=GENERATOR_VERSION,
            seed=seed,
            num_images=num_images,
            image_size=image_size,
            products=summary,
            mask='0 background, 255 defect (exact)',
        )
        with open(osp.join(tmp, 'meta.json'), 'w') as f:
            json.dump(meta, f, indent=2)
            f.write('\n')
        with open(osp.join(tmp, 'README.md'), 'w') as f:
            f.write(_readme(seed, num_images, image_size, summary))
    if progress:
        n = sum(sum(c.values()) for c in summary.values())
        print(
            f'\nWrote {n} images in {time.perf_counter() - t0:.1f} s to {out_dir}',
            flush=True,
        )
    return summary


def ensure_synthetic_benchmark(
    out_dir: str,
    seed: int = 0,
    num_images: int = 12,
    image_size: int = 256,
    products: Optional[Union[str, Sequence[str]]] = None,
    progress: bool = True,
) -> Dict[str, Dict[str, int]]:
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
        with file_lock(out_dir):
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
                    progress=progress,
                )
    with open(meta_path) as f:
        meta = json.load(f)
    expected = dict(
        version=GENERATOR_VERSION,
        seed=int(seed),
        num_images=int(num_images),
        image_size=int(image_size),
    )
    diff = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k) != v}
    have = meta.get('products') or {}
    missing = [p for p in wanted if p not in have]
    if diff or missing:
        details = [f'{k}={got!r} (wanted {want!r})' for k, (got, want) in diff.items()]
        if missing:
            details.append(f'products {sorted(have)} (missing {missing})')
        raise ValueError(
            f'{out_dir} holds a synthetic benchmark generated with different '
            f'settings: {", ".join(details)}. Delete it, regenerate it with '
            'tools/dataset_converters/make_synthetic_benchmark.py '
            '--overwrite, or point data_root elsewhere.'
        )
    return {p: dict(have[p]) for p in wanted}
