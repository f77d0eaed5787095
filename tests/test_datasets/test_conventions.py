"""Image and mask conventions of the dataset never silently go empty/wrong.

Every case writes a tiny product (3 images of 48x40 per category) in one
convention and checks that the dataset either reads the foreground exactly
where it was drawn or stops with an error naming the file and the setting.
"""

import io
import os
import os.path as osp
import warnings

import cv2
import numpy as np
import pytest
from PIL import Image

from fdseg.datasets import FewShotDefectDataset, GFDSDataset
from fdseg.datasets.transforms import episode_pipeline, read_image, read_mask

W, H = 48, 40
N = 3


def _region(i):
    """Where image ``i`` holds its defect: a ``[H, W]`` bool mask."""
    m = np.zeros((H, W), bool)
    m[5 + 2 * i : 18 + 2 * i, 8 + 3 * i : 24 + 3 * i] = True
    return m


def _image(i):
    rng = np.random.default_rng(i)
    img = rng.integers(100, 140, (H, W, 3)).astype(np.uint8)
    img[_region(i)] = 30
    return img


def _write_png(path, arr, mode=None, palette=None):
    im = Image.fromarray(arr, mode) if mode else Image.fromarray(arr)
    if palette is not None:
        im.putpalette(palette)
    im.save(path)


# mask writers: (path, region, index of the category) -> file
def _mask_0255(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint8) * 255)


def _mask_01(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint8))


def _mask_16bit_01(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint16))


def _mask_16bit_12bit(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint16) * 4095)


def _mask_palette_dark(path, r, ci):
    # Index 1 is a very dark red: its brightness (about 3) is below any
    # threshold, its index is the defect.
    _write_png(path, r.astype(np.uint8), 'P', [0, 0, 0, 10, 0, 0] + [0] * 762)


def _mask_colour_dark(path, r, ci):
    # Dark red on black (RGB): OpenCV's grayscale gives 27 < 30.
    m = np.zeros((H, W, 3), np.uint8)
    m[r] = (90, 0, 0)
    _write_png(path, m)


def _mask_alpha_only(path, r, ci):
    m = np.zeros((H, W, 4), np.uint8)  # black everywhere, drawn in alpha
    m[..., 3][r] = 255
    _write_png(path, m, 'RGBA')


def _mask_index(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint8) * (ci + 1))


def _mask_antialiased(path, r, ci):
    cv2.imwrite(path, cv2.GaussianBlur(r.astype(np.uint8) * 255, (5, 5), 0))


def _mask_low(path, r, ci):
    cv2.imwrite(path, r.astype(np.uint8) * 20)


def _mask_empty(path, r, ci):
    cv2.imwrite(path, np.zeros((H, W), np.uint8))


def write(root, product, writer, categories=('a', 'b'), n=N, img_ext='.png'):
    for ci, cat in enumerate(categories):
        idir = osp.join(root, product, 'images', cat)
        gdir = osp.join(root, product, 'ground_truth', cat)
        os.makedirs(idir, exist_ok=True)
        os.makedirs(gdir, exist_ok=True)
        for i in range(n):
            cv2.imwrite(osp.join(idir, f'{cat}{i}{img_ext}'), _image(i))
            writer(osp.join(gdir, f'{cat}{i}.png'), _region(i), ci)


def build(root, products, **kw):
    kw.setdefault('pipeline', episode_pipeline((W, H)))
    return FewShotDefectDataset(data_root=str(root), products=products, **kw)


def _check_exact(ds):
    """Every query and support mask is exactly its drawn region."""
    for idx in range(len(ds)):
        info = ds.get_data_info(idx)
        s = ds[idx]['data_samples']
        gt = s.gt_sem_seg.data[0].numpy() > 0
        i = int(osp.splitext(info['img_path'])[0][-1])
        assert (gt == _region(i)).all(), info['seg_map_path']
        for p, m in zip(info['support_paths'], s.support_masks.numpy()):
            j = int(osp.splitext(p)[0][-1])
            assert ((m > 0) == _region(j)).all(), p


# ----------------------------------------------------------------------
# A. masks in other conventions
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'writer,spec',
    [
        (_mask_0255, {}),
        (_mask_01, {}),
        (_mask_01, dict(mask_threshold=127)),
        (_mask_16bit_01, {}),
        (_mask_16bit_12bit, dict(mask_threshold=127)),
        (_mask_palette_dark, {}),
        (_mask_colour_dark, {}),
        (_mask_alpha_only, {}),
        (_mask_index, dict(mask_mode='index')),
    ],
    ids=[
        '0-255',
        '0-1',
        '0-1-thr127',
        '16bit-0-1',
        '16bit-12bit',
        'palette-dark',
        'colour-dark',
        'alpha-only',
        'index',
    ],
)
def test_unambiguous_mask_conventions_are_read(tmp_path, writer, spec):
    write(tmp_path, 'p', writer)
    ds = build(tmp_path, [dict(name='p', **spec)], shot=2)
    assert len(ds) == 2 * N
    _check_exact(ds)


@pytest.mark.parametrize(
    'writers,spec,match',
    [
        (
            (_mask_low, _mask_0255),
            {},
            r'a0.png: every non-zero mask value is <= '
            r'mask_threshold 30 .*set mask_threshold of product .p. below 20',
        ),
        # {0, 1} masks are unambiguous 0/1 masks; {0, 2} are not
        (
            (_mask_index, _mask_index),
            {},
            r'b0.png: every non-zero mask value is '
            r"<= mask_threshold 30.*set mask_mode='index' for product 'p'",
        ),
        (
            (_mask_antialiased, _mask_index),
            dict(mask_mode='index'),
            r'a0.png: value-indexed mask holds values .* no class value of product '
            r"'p' \(\[1, 2\].*set mask_mode='binary'",
        ),
        (
            (_mask_0255, _mask_index),
            dict(mask_mode='index'),
            r'a0.png: value-indexed mask holds values \[255\] but not this '
            r"category's value 1.*index_map of product 'p'",
        ),
        (
            (_mask_empty, _mask_0255),
            {},
            r'category p/a: none of its 3 masks has '
            r'a foreground pixel \(mask > mask_threshold 30\), e.g. .*a0.png',
        ),
        (
            (_mask_empty, _mask_index),
            dict(mask_mode='index'),
            r'category p/a: none of its 3 masks .*\(mask == 1 \(index_map\)\)',
        ),
    ],
    ids=[
        'fg-below-threshold',
        'index-read-as-binary',
        'binary-read-as-index',
        '0-255-read-as-index',
        'all-empty',
        'all-empty-index',
    ],
)
def test_mismatched_conventions_stop_at_construction(tmp_path, writers, spec, match):
    # Category 'a' (value 1) is written with writers[0], 'b' (value 2) with
    # writers[1].
    for ci, (cat, writer) in enumerate(zip('ab', writers)):
        write(
            tmp_path, 'p', lambda p, r, _, w=writer, c=ci: w(p, r, c), categories=(cat,)
        )
    with pytest.raises(ValueError, match=match):
        build(tmp_path, [dict(name='p', **spec)])


def test_mismatch_later_in_a_category_fails_naming_the_file(tmp_path):
    # The construction scan stops at the first mask with foreground; the
    # per-file check still catches a later mismatching mask when it loads.
    write(tmp_path, 'p', _mask_0255, categories=('a',))
    bad = osp.join(tmp_path, 'p', 'ground_truth', 'a', 'a2.png')
    _mask_low(bad, _region(2), 0)
    ds = build(tmp_path, ['p'])
    with pytest.raises(ValueError, match='a2.png: every non-zero'):
        for i in range(len(ds)):
            ds[i]


def test_single_empty_masks_in_a_category_keep_working(tmp_path):
    # As magnetic tile "uneven": some empty masks among non-empty ones.
    write(tmp_path, 'p', _mask_0255, categories=('a',), n=4)
    for i in (0, 1):
        _mask_empty(osp.join(tmp_path, 'p', 'ground_truth', 'a', f'a{i}.png'), None, 0)
    ds = build(tmp_path, ['p'])
    sums = [int(ds[i]['data_samples'].gt_sem_seg.data.sum()) for i in range(len(ds))]
    assert sorted(s > 0 for s in sums) == [False, False, True, True]


def test_n_way_supports_use_their_own_products_convention(tmp_path):
    # Query of a binary product, extra way of a value-indexed one (and the
    # reverse): each support is read with its own product's mask_mode.
    write(tmp_path, 'bin', _mask_antialiased, categories=('a',))
    write(tmp_path, 'idx', _mask_index, categories=('x', 'y'))
    ds = build(
        tmp_path,
        [dict(name='bin', mask_threshold=127), dict(name='idx', mask_mode='index')],
        way=2,
        way_pool='all',
    )
    seen = set()
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        s = ds[i]['data_samples']
        assert s.support_masks.flatten(1).sum(1).min() > 0
        seen.add(tuple(sorted(info['support_products'])))
    assert ('bin', 'idx') in seen


# ----------------------------------------------------------------------
# B. 16-bit (12-bit) and float images
# ----------------------------------------------------------------------
def _ramp(hi):
    return np.arange(H * W).reshape(H, W) * hi // (H * W - 1)


@pytest.mark.parametrize('channels', [1, 3])
def test_16bit_image_with_12bit_data_spans_0_255(tmp_path, channels):
    v = _ramp(4095).astype(np.uint16)
    arr = v if channels == 1 else np.stack([v, v // 2, v // 4], -1)
    path = str(tmp_path / 'img16.png')
    cv2.imwrite(path, arr)
    img = read_image(path)
    expect = np.rint(v * 255.0 / 4095).astype(np.uint8)
    assert img.dtype == np.uint8 and img.shape == (H, W, 3)
    # the first channel read is R: OpenCV wrote arr[..., 0] as blue
    ch = 0 if channels == 1 else 2
    assert np.abs(img[..., ch].astype(int) - expect).max() <= 1
    assert img.max() == 255


def test_image_bit_depth_declared_or_inferred(tmp_path):
    path = str(tmp_path / 'dark12.png')
    cv2.imwrite(path, _ramp(1000).astype(np.uint16))  # dark 12-bit image
    assert read_image(path).max() == 249  # inferred 10 bits: 1000/1023
    assert read_image(path, bit_depth=12).max() == 62  # 1000/4095
    with pytest.raises(ValueError, match='do not fit the declared bit depth'):
        read_image(path, bit_depth=8)
    # the product setting reaches the loader
    write(tmp_path, 'p', _mask_0255, categories=('a',))
    for i in range(N):
        cv2.imwrite(
            osp.join(tmp_path, 'p', 'images', 'a', f'a{i}.png'),
            _ramp(1000).astype(np.uint16),
        )
    ds = build(tmp_path, [dict(name='p', image_bit_depth=12)])
    assert int(ds[0]['inputs'].max()) == 62


def test_float_tiff_image_in_0_1(tmp_path):
    path = str(tmp_path / 'f.tiff')
    cv2.imwrite(path, (_ramp(1000) / 1000).astype(np.float32))
    img = read_image(path)
    assert img.max() == 255 and img.min() == 0


@pytest.mark.parametrize(
    'alpha,ok', [(255, True), (None, False)], ids=['opaque', 'transparent']
)
def test_rgba_image_files(tmp_path, alpha, ok):
    rgba = np.concatenate([_image(0), np.full((H, W, 1), 255, np.uint8)], -1)
    if alpha is None:
        rgba[:5, :, 3] = 0
    path = str(tmp_path / 'rgba.png')
    _write_png(path, rgba, 'RGBA')
    if ok:
        assert (read_image(path) == _image(0)).all()
    else:
        with pytest.raises(
            ValueError, match='rgba.png: RGBA image with transparent pixels'
        ):
            read_image(path)


# ----------------------------------------------------------------------
# C. a product name as a string
# ----------------------------------------------------------------------
def test_products_string_is_one_product(tmp_path):
    write(tmp_path, 'magnetic_tile', _mask_0255, categories=('blowhole',))
    ds = build(tmp_path, 'magnetic_tile')
    assert ds.metainfo['products'] == ['magnetic_tile']
    assert len(ds) == N
    # categories / exclude strings are one category, not letters
    write(tmp_path, 'magnetic_tile', _mask_0255, categories=('uneven',))
    ds = build(tmp_path, [dict(name='magnetic_tile', categories='uneven')])
    assert ds.categories == ['magnetic_tile/uneven']
    ds = build(tmp_path, [dict(name='magnetic_tile', exclude='uneven')])
    assert ds.categories == ['magnetic_tile/blowhole']


def test_gfds_dataset_products_string(tmp_path, real_defects):
    write(tmp_path, 'crackforest', _mask_0255, categories=('crack',))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # Table-1 count differs
        ds = GFDSDataset(
            data_root=str(tmp_path),
            products='crackforest',
            benchmark='real_defects',
            declare=real_defects,
        )
    assert ds.categories == ['crackforest/crack']


# ----------------------------------------------------------------------
# D. a JPEG with a corrupt body but a valid end marker
# ----------------------------------------------------------------------
def _corrupt_jpeg(path):
    ok, buf = cv2.imencode('.jpg', cv2.GaussianBlur(_image(0), (5, 5), 0))
    data = bytearray(buf.tobytes())
    sos = data.find(b'\xff\xda')
    data[sos + 40 : sos + 400] = b'\x00' * 360  # entropy data; EOI stays
    assert data.endswith(b'\xff\xd9')
    open(path, 'wb').write(bytes(data))


def test_corrupt_jpeg_body_raises_naming_the_file(tmp_path, capfd):
    path = str(tmp_path / 'bad.jpg')
    _corrupt_jpeg(path)
    with pytest.raises(
        OSError,
        match=r'bad.jpg is a corrupt JPEG \(libjpeg: '
        'Corrupt JPEG data',
    ):
        read_image(path)
    # a clean JPEG still reads, and stderr works afterwards
    good = str(tmp_path / 'good.jpg')
    cv2.imwrite(good, _image(0))
    assert read_image(good).shape == (H, W, 3)
    os.write(2, b'after\n')
    assert capfd.readouterr().err == 'after\n'


def test_corrupt_jpeg_in_the_dataset(tmp_path):
    write(tmp_path, 'p', _mask_0255, categories=('a',), img_ext='.jpg')
    _corrupt_jpeg(osp.join(tmp_path, 'p', 'images', 'a', 'a1.jpg'))
    ds = build(tmp_path, ['p'])
    with pytest.raises(OSError, match='a1.jpg is a corrupt JPEG'):
        for i in range(len(ds)):
            ds[i]


# ----------------------------------------------------------------------
# E. non-image entries in the data folders
# ----------------------------------------------------------------------
def _apple_double(d):
    open(osp.join(d, '._a0.png'), 'wb').write(b'\x00\x05\x16\x07' + b'\0' * 60)


def _thumbs(d):
    open(osp.join(d, 'Thumbs.db'), 'wb').write(b'\xd0\xcf\x11\xe0')


def _ds_store(d):
    open(osp.join(d, '.DS_Store'), 'wb').write(b'\0\0\0\1Bud1')


def _folder_png(d):
    os.makedirs(osp.join(d, 'old.png'))


@pytest.mark.parametrize(
    'junk',
    [
        [_apple_double],
        [_thumbs],
        [_ds_store],
        [_folder_png],
        [_apple_double, _thumbs, _ds_store, _folder_png],
    ],
    ids=['appledouble', 'thumbs', 'ds_store', 'folder-png', 'all'],
)
def test_non_image_entries_skipped_with_one_warning(tmp_path, junk):
    write(tmp_path, 'p', _mask_0255)
    for sub in ('images', 'ground_truth'):
        for cat in ('a', 'b'):
            for j in junk:
                j(osp.join(tmp_path, 'p', sub, cat))
    with pytest.warns(UserWarning) as rec:
        ds = build(tmp_path, ['p'])
    msgs = [str(w.message) for w in rec if 'not images' in str(w.message)]
    assert len(msgs) == 1
    assert msgs[0].startswith(f'{4 * len(junk)} entries in the data folders')
    assert 'e.g. ' + str(tmp_path) in msgs[0]
    assert len(ds) == 2 * N
    _check_exact(ds)


def test_hidden_category_folder_does_not_shift_index_values(tmp_path):
    write(tmp_path, 'p', _mask_index, categories=('a', 'b'))
    os.makedirs(osp.join(tmp_path, 'p', 'images', '.ipynb_checkpoints'))
    with pytest.warns(UserWarning, match='1 entries .*ipynb_checkpoints'):
        ds = build(tmp_path, [dict(name='p', mask_mode='index')])
    assert ds.categories == ['p/a', 'p/b']
    assert {ds.get_data_info(i)['query_mask_value'] for i in range(len(ds))} == {1, 2}


# ----------------------------------------------------------------------
# F. one stem twice in a folder
# ----------------------------------------------------------------------
@pytest.mark.parametrize(
    'sub,extra', [('images', 'a1.jpg'), ('ground_truth', 'a1.bmp')]
)
def test_same_stem_twice_is_an_error_naming_both(tmp_path, sub, extra):
    write(tmp_path, 'p', _mask_0255, categories=('a',))
    d = osp.join(tmp_path, 'p', sub, 'a')
    cv2.imwrite(osp.join(d, extra), _image(1))
    with pytest.raises(
        ValueError,
        match=r'a1\.(bmp|jpg) and .*a1\.png have '
        r"the same stem 'a1'",
    ):
        build(tmp_path, ['p'])


# ----------------------------------------------------------------------
# read_mask / read_image directly
# ----------------------------------------------------------------------
def test_read_mask_modes(tmp_path):
    path = str(tmp_path / 'm.png')
    _mask_palette_dark(path, _region(0), 0)
    assert set(np.unique(read_mask(path))) == {0, 1}  # stored indices
    assert set(np.unique(read_mask(path, 'binary'))) == {0, 255}
    pal = [0, 0, 0, 10, 0, 0, 200, 0, 0] + [0] * 759
    m = _region(0).astype(np.uint8)
    m[0, 0] = 2
    _write_png(path, m, 'P', pal)
    with pytest.raises(
        ValueError,
        match=r'm.png: palette mask with several '
        r"non-zero indices \[1, 2\].*mask_mode='index'",
    ):
        read_mask(path, 'binary')
    assert (read_mask(path, 'index', 2) > 0).sum() == 1


def test_real_data_masks_still_load(real_defects):
    from tests.conftest import SHARED_DATA

    if not osp.isdir(SHARED_DATA):
        pytest.skip('../shared/data is absent')
    ds = GFDSDataset(
        data_root=SHARED_DATA,
        benchmark='real_defects',
        declare=real_defects,
        pipeline=episode_pipeline(64),
        max_episodes_per_category=2,
        check_counts=False,
    )
    assert len(ds) == 2 * 9
    for i in range(len(ds)):
        s = ds[i]['data_samples']
        assert s.support_masks.flatten(1).sum(1).max() > 0


def test_png_bytes_helper_is_palette():
    from fdseg.datasets.transforms.conventions import is_palette_png

    b = io.BytesIO()
    Image.fromarray(np.zeros((2, 2), np.uint8), 'P').save(b, 'PNG')
    assert is_palette_png(np.frombuffer(b.getvalue(), np.uint8))
    b = io.BytesIO()
    Image.fromarray(np.zeros((2, 2), np.uint8), 'L').save(b, 'PNG')
    assert not is_palette_png(np.frombuffer(b.getvalue(), np.uint8))
