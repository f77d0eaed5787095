"""FewShotInferencer inputs: converted by the dataset's rules or refused.

The reference is a uint8 RGB ``[H, W, 3]`` array with a 0/1 mask; every
other form of the same pixels must give the same prediction (support side
and query side), everything ambiguous must raise naming the argument.
"""

import pathlib
import warnings

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fdseg.apis import FewShotInferencer
from fdseg.registry import MODELS

H, W = 40, 48


def _sample(seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(100, 140, (H, W, 3)).astype(np.uint8)
    m = np.zeros((H, W), np.uint8)
    y, x = 8 + seed, 10 + 2 * seed
    m[y : y + 14, x : x + 16] = 1
    img[m > 0] = (20, 200, 20)
    return img, m


S_IMG, S_MASK = _sample(0)
Q_IMG, Q_MASK = _sample(3)


@pytest.fixture(scope='module')
def inf():
    from mmengine.registry import init_default_scope

    init_default_scope('fdseg')
    model = MODELS.build(
        dict(
            type='FewShotSegmentor',
            backbone=dict(type='FilterBank'),
            head=dict(type='PrototypeMatcherHead'),
        )
    ).eval()
    return FewShotInferencer(model, scale=(64, 64))


@pytest.fixture(scope='module')
def reference(inf):
    inf.set_support([S_IMG], [S_MASK])
    pred = inf([Q_IMG])[0]
    assert ((pred == 1) & (Q_MASK == 1)).sum() > 0.5 * Q_MASK.sum()
    return pred


def _png(tmp_path, name, arr, mode=None):
    path = tmp_path / name
    Image.fromarray(arr, mode).save(path)
    return path


def _palette_mask(m):
    im = Image.fromarray(m, 'P')
    im.putpalette([0, 0, 0, 10, 0, 0] + [0] * 762)  # a dark defect colour
    return im


def _rgba(img, alpha=255):
    return np.concatenate([img, np.full((H, W, 1), alpha, np.uint8)], -1)


# image forms: uint8 RGB [H, W, 3] -> the same pixels in another form
IMAGE_FORMS = {
    'float01': lambda im, tmp: im.astype(np.float32) / 255,
    'float0255': lambda im, tmp: im.astype(np.float64),
    'uint16-12bit': lambda im, tmp: np.rint(im.astype(np.float64) * 4095 / 255).astype(
        np.uint16
    ),
    'chw-array': lambda im, tmp: np.ascontiguousarray(im.transpose(2, 0, 1)),
    'chw-tensor': lambda im, tmp: torch.from_numpy(
        np.ascontiguousarray(im.transpose(2, 0, 1))
    ),
    'hwc-tensor': lambda im, tmp: torch.from_numpy(im.copy()),
    'pil': lambda im, tmp: Image.fromarray(im),
    'rgba-opaque': lambda im, tmp: _rgba(im),
    'rgba-pil': lambda im, tmp: Image.fromarray(_rgba(im), 'RGBA'),
    'path-str': lambda im, tmp: str(_png(tmp, 'i.png', im)),
    'pathlib': lambda im, tmp: _png(tmp, 'i.png', im),
    'rgba-file': lambda im, tmp: _png(tmp, 'i.png', _rgba(im), 'RGBA'),
    'uint16-file': lambda im, tmp: _write16(tmp, im),
}


def _write16(tmp, im):
    path = str(tmp / 'i16.png')
    cv2.imwrite(
        path, np.rint(im[..., ::-1].astype(np.float64) * 4095 / 255).astype(np.uint16)
    )
    return path


MASK_FORMS = {
    '0-255': lambda m, tmp: m * 255,
    'bool': lambda m, tmp: m.astype(bool),
    'float01': lambda m, tmp: m.astype(np.float32),
    'soft-float': lambda m, tmp: m * np.float32(0.7),
    'uint16-01': lambda m, tmp: m.astype(np.uint16),
    'uint16-full': lambda m, tmp: m.astype(np.uint16) * 65535,
    'tensor-1hw': lambda m, tmp: torch.from_numpy(m[None].astype(np.int64)),
    'pil-palette-dark': lambda m, tmp: _palette_mask(m),
    'pil-L': lambda m, tmp: Image.fromarray(m * 255),
    'palette-file': lambda m, tmp: _save(_palette_mask(m), tmp / 'm.png'),
    'pathlib-01-file': lambda m, tmp: _save(Image.fromarray(m), tmp / 'm.png'),
    'rgba-alpha-only-file': lambda m, tmp: _save(
        Image.fromarray(np.dstack([np.zeros((H, W, 3), np.uint8), m * 255]), 'RGBA'),
        tmp / 'm.png',
    ),
}


def _save(im, path):
    im.save(path)
    return path


@pytest.mark.parametrize('form', list(IMAGE_FORMS))
def test_image_forms_match_uint8_rgb(inf, reference, tmp_path, form):
    conv = IMAGE_FORMS[form]
    # support side
    inf.set_support([conv(S_IMG, tmp_path)], [S_MASK])
    assert (inf([Q_IMG])[0] == reference).all()
    # query side (same rule)
    inf.set_support([S_IMG], [S_MASK])
    assert (inf([conv(Q_IMG, tmp_path)])[0] == reference).all()


@pytest.mark.parametrize('form', list(MASK_FORMS))
def test_mask_forms_match_0_1(inf, reference, tmp_path, form):
    inf.set_support([S_IMG], [MASK_FORMS[form](S_MASK, tmp_path)])
    assert (inf([Q_IMG])[0] == reference).all()


def test_single_items_and_batches(inf, reference, tmp_path):
    s_img = str(_png(tmp_path, 's.png', S_IMG))
    s_mask = _png(tmp_path, 'm.png', S_MASK * 255)
    inf.set_support(s_img, s_mask)  # one support, not a list of letters
    assert (inf(pathlib.Path(_png(tmp_path, 'q.png', Q_IMG)))[0] == reference).all()
    batch = np.stack([Q_IMG, Q_IMG])  # [B, H, W, 3]
    assert [p.shape for p in inf(batch)] == [(H, W), (H, W)]
    assert all((p == reference).all() for p in inf(batch))
    tbatch = torch.from_numpy(batch).permute(0, 3, 1, 2)  # [B, 3, H, W]
    assert all((p == reference).all() for p in inf(tbatch))
    assert (inf(Image.fromarray(Q_IMG))[0] == reference).all()


@pytest.mark.parametrize(
    'kwargs,exc,match',
    [
        (
            dict(labels=[0]),
            ValueError,
            r'labels must cover the ways 1..N \(0 is '
            r'the background.*got \[0\]',
        ),
        (dict(labels=[2]), ValueError, r'labels must cover the ways 1..N'),
        (dict(labels=[1, 1]), ValueError, r'labels has 2 entries for 1 supports'),
        (dict(labels='1'), ValueError, r'labels must be a list of 1 ints'),
        (dict(labels=[1.5]), ValueError, r'labels must be integers'),
        (
            dict(images=[(S_IMG.astype(np.float32) - 120) / 30]),
            ValueError,
            r'images\[0\]: float image with values in .*normalisation',
        ),
        (
            dict(
                images=[
                    _rgba(S_IMG, 255) * np.array([1, 1, 1, 0], np.uint8)
                    + np.eye(1, 4, 3, dtype=np.uint8)
                    * (np.arange(H * W).reshape(H, W, 1) % 2 * 255)
                ]
            ),
            ValueError,
            r'images\[0\]: RGBA image with transparent pixels',
        ),
        (
            dict(images=[np.zeros((H, W, 5), np.uint8)]),
            ValueError,
            r'images\[0\]: no axis of shape \(40, 48, 5\)',
        ),
        (
            dict(images=[S_IMG.astype(np.int32) - 300]),
            ValueError,
            r'images\[0\]: integer image with negative values',
        ),
        (dict(images=[{'img': 1}]), TypeError, r'images\[0\]: expected a path'),
        (dict(images={'a': 1}), TypeError, r'images must be a list'),
        (
            dict(masks=[S_MASK * np.float32(0.1)]),
            ValueError,
            r'masks\[0\]: every non-zero mask value is <= mask_threshold 30',
        ),
        (
            dict(masks=[S_MASK * 2]),
            ValueError,
            r'masks\[0\]: every non-zero mask '
            r'value .*pass a binary mask such as \(mask == k\)',
        ),
        (
            dict(masks=[S_MASK * np.float32(-1)]),
            ValueError,
            r'masks\[0\]: mask with negative values',
        ),
        (
            dict(masks=[np.stack([S_MASK, S_MASK])]),
            ValueError,
            r'masks\[0\]: no axis of shape \(2, 40, 48\) has 1, 3 or 4 channels '
            r'\(pass several images or masks as a list\)',
        ),
        (dict(masks=[S_MASK, S_MASK]), ValueError, r'as many masks as images'),
    ],
    ids=[
        'labels-0',
        'labels-gap',
        'labels-len',
        'labels-str',
        'labels-float',
        'normalised-float',
        'rgba-transparent',
        '5-channels',
        'negative-int',
        'bad-type',
        'images-dict',
        'faint-float-mask',
        'index-mask',
        'negative-mask',
        'stacked-masks',
        'count',
    ],
)
def test_refused_inputs_name_the_argument(inf, kwargs, exc, match):
    args = dict(images=[S_IMG], masks=[S_MASK])
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        inf.set_support(**args)


def test_refused_query_names_the_argument(inf, reference):
    inf.set_support([S_IMG], [S_MASK])
    with pytest.raises(ValueError, match=r'queries\[1\]: float image'):
        inf([Q_IMG, Q_IMG.astype(np.float32) - 128])


@pytest.mark.parametrize('fill,word,expect', [(0, 'empty', 0), (1, 'full', 1)])
def test_empty_or_full_support_mask_warns_with_defined_result(inf, fill, word, expect):
    with pytest.warns(
        UserWarning,
        match=rf'masks\[0\] is {word} at the '
        r'network size 64x64 \(mask > 30\): support 0 adds no',
    ):
        inf.set_support([S_IMG], [np.full((H, W), fill, np.uint8)])
    # prototype matcher: no fg prototype -> all background; no bg prototype
    # -> all foreground
    assert (inf([Q_IMG])[0] == expect).all()
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        inf.set_support([S_IMG], [S_MASK])  # a normal mask does not warn


def test_docstring_says_rgb_not_bgr():
    assert 'RGB' in FewShotInferencer.__doc__
    assert "not OpenCV's BGR" in FewShotInferencer.__doc__
