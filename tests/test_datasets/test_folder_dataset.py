"""FolderFewShotDataset: a user's images/ + masks/ folder as GFDS episodes."""

import os
import os.path as osp

import cv2
import numpy as np
import pytest

from fdseg.datasets import FolderFewShotDataset
from fdseg.datasets.transforms import episode_pipeline

H, W = 24, 32


def _write(root, rel_img, rel_mask=None, value=255, fill=True):
    """One image (and mask with a 6x8 defect at a position set by name)."""
    os.makedirs(osp.dirname(osp.join(root, rel_img)), exist_ok=True)
    img = np.full((H, W, 3), 120, np.uint8)
    cv2.imwrite(osp.join(root, rel_img), img)
    if rel_mask is not None:
        m = np.zeros((H, W), np.uint8)
        if fill:
            m[4:10, 6:14] = value
        os.makedirs(osp.dirname(osp.join(root, rel_mask)), exist_ok=True)
        cv2.imwrite(osp.join(root, rel_mask), m)


def _names(ds):
    out = []
    for i in range(len(ds)):
        e = ds.get_data_info(i)
        out.append(
            (
                e['category_key'],
                osp.basename(e['img_path']),
                tuple(osp.basename(p) for p in e['support_paths']),
                e['is_good'],
            )
        )
    return out


def test_flat_layout_with_good_and_suffix(tmp_path):
    root = str(tmp_path)
    for s in ('a', 'b', 'c'):
        _write(root, f'images/{s}.png', f'masks/{s}_mask.png')
    _write(root, 'images/good/g.png')
    _write(root, 'images/.DS_Store.png')  # hidden: skipped
    with pytest.warns(UserWarning, match=r'^1 entries .*images/\.DS_Store\.png'):
        ds = FolderFewShotDataset(
            root, mask_suffix='_mask', pipeline=episode_pipeline(32), seed=0
        )
    eps = _names(ds)
    assert ds.categories == ['custom/defect']
    # every defect image is the query once, with one support of the others
    assert [e[1] for e in eps] == ['a.png', 'b.png', 'c.png', 'g.png']
    for cat, q, sup, good in eps:
        assert cat == 'custom/defect' and len(sup) == 1 and sup[0] != q
        assert good == (q == 'g.png')
    assert ds.get_data_info(0)['seg_map_path'].endswith('masks/a_mask.png')
    # the packed episode: supports resized and binarised by the pipeline
    packed = ds[0]['data_samples']
    assert packed.support_masks.shape == (1, 32, 32)
    # a 6x8 box of 24x32 at 32x32: rows 4..10 * 32/24, cols 6..14
    assert packed.support_masks.sum() == pytest.approx(8 * 8, abs=12)
    assert ds[3]['data_samples'].gt_sem_seg.data.sum() == 0  # good query


def test_category_folders_and_excluded_good(tmp_path):
    root = str(tmp_path)
    for cat in ('dent', 'scratch'):
        for s in ('1', '2'):
            _write(root, f'images/{cat}/{cat}{s}.jpg', f'masks/{cat}/{cat}{s}.png')
    _write(root, 'images/good/g.png')
    ds = FolderFewShotDataset(
        root, name='line3', include_good=False, pipeline=episode_pipeline(32)
    )
    assert ds.categories == ['line3/dent', 'line3/scratch']
    assert _names(ds) == [
        ('line3/dent', 'dent1.jpg', ('dent2.jpg',), False),
        ('line3/dent', 'dent2.jpg', ('dent1.jpg',), False),
        ('line3/scratch', 'scratch1.jpg', ('scratch2.jpg',), False),
        ('line3/scratch', 'scratch2.jpg', ('scratch1.jpg',), False),
    ]


def test_index_masks(tmp_path):
    root = str(tmp_path)
    for cat, v in (('dent', 1), ('scratch', 2)):
        for s in ('1', '2'):
            _write(root, f'images/{cat}/{s}.png', f'masks/{cat}/{s}.png', value=v)
    ds = FolderFewShotDataset(
        root,
        mask_mode='index',
        index_map=dict(dent=1, scratch=2),
        pipeline=episode_pipeline(32),
    )
    assert ds[0]['data_samples'].support_masks.sum() > 0
    assert ds[3]['data_samples'].support_masks.sum() > 0


def test_errors_name_the_file(tmp_path):
    root = str(tmp_path / 'missing')
    with pytest.raises(FileNotFoundError, match=r'missing/images does not exist'):
        FolderFewShotDataset(root, pipeline=[])

    root = str(tmp_path / 'nomask')
    _write(root, 'images/a.png', 'masks/a.png')
    _write(root, 'images/b.png')
    with pytest.raises(
        FileNotFoundError, match=r'nomask/images/b.png has no mask in .*nomask/masks'
    ):
        FolderFewShotDataset(root, pipeline=[])

    root = str(tmp_path / 'suffix')
    _write(root, 'images/a.png', 'masks/a.png')
    with pytest.raises(FileNotFoundError, match=r'\(expected a_m\.<ext>\)'):
        FolderFewShotDataset(root, mask_suffix='_m', pipeline=[])

    root = str(tmp_path / 'empty')
    for s in ('a', 'b'):
        _write(root, f'images/{s}.png', f'masks/{s}.png', fill=False)
    with pytest.raises(ValueError, match=r'custom/defect: none of its 2 masks'):
        FolderFewShotDataset(root, pipeline=[])

    root = str(tmp_path / 'clash')
    _write(root, 'images/a.png', 'masks/a.png')
    _write(root, 'images/defect/b.png', 'masks/defect/b.png')
    with pytest.raises(ValueError, match=r"sub-folder 'defect'"):
        FolderFewShotDataset(root, pipeline=[])

    root = str(tmp_path / 'onlygood')
    _write(root, 'images/good/a.png')
    with pytest.raises(ValueError, match=r'has no defect images'):
        FolderFewShotDataset(root, pipeline=[])

    with pytest.raises(TypeError, match='not products'):
        FolderFewShotDataset(root, products=['x'], pipeline=[])
