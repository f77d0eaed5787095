"""Episodic training data: subsets, per-epoch episodes, augmentation, sampler.

References: Table 2 (folds) and Sec. 6.1.1 (in-domain split, random flips
and 90-degree rotations) of the paper; the episode definition of
``docs/meta_learning.md`` (an epoch is one pass over the training subset's
query images, each with supports drawn afresh from ``(seed, epoch,
query)``).
"""

import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config

from fdseg import benchmarks as G
from fdseg.benchmarks.splits import split_products
from fdseg.datasets import EpisodeSampler, FewShotDefectDataset
from fdseg.datasets.transforms import episode_pipeline
from tests.conftest import REPO

BASE = osp.join(REPO, 'configs', '_base_')


def _names(specs):
    return {s['name'] for s in specs}


def test_training_subsets_follow_table2_and_sec611():
    # Cross-domain: the training subset of a fold is the other fold.
    dagm_parts = {f'Class{k}' for k in range(1, 11)}
    assert _names(split_products('fold0', 'train')) == set(G.FOLDS['fold1'])
    assert (
        _names(split_products('fold1', 'train'))
        == (set(G.FOLDS['fold0']) - {'DAGM'}) | dagm_parts
    )
    # In-domain: every product but Kol and DAGM, without its test class.
    train = {s['name']: s['categories'] for s in split_products('in-domain', 'train')}
    test = {s['name']: s['categories'] for s in split_products('in-domain', 'test')}
    assert set(train) == set(test) == set(G.gfds_order()) - {'Kol', 'DAGM'}
    for p in train:
        assert test[p] == [G.IN_DOMAIN_TEST_CLASS[p]]
        assert sorted(train[p] + test[p]) == sorted(G.benchmark_categories(p))
    assert train['Tile'] == ['glue_strip', 'gray_stroke', 'oil', 'rough']


@pytest.mark.parametrize(
    'name, split', [('fold0', 'fold0'), ('fold1', 'fold1'), ('in-domain', 'in-domain')]
)
def test_episodic_bases(name, split):
    cfg = Config.fromfile(osp.join(BASE, 'datasets', f'gfds_episodic_{name}.py'))
    train = cfg.train_dataloader
    assert train.sampler.type == 'EpisodeSampler' and train.sampler.shuffle
    assert train.dataset.split == split and train.dataset.subset == 'train'
    assert train.dataset.support_draw == 'per_epoch'
    assert (train.dataset.shot, train.dataset.way) == (1, 1)
    types = [t['type'] for t in train.dataset.pipeline]
    assert 'RandomFlipEpisode' in types and 'RandomRotate90Episode' in types
    resize = [t for t in train.dataset.pipeline if t['type'] == 'ResizeEpisode']
    assert tuple(resize[0]['scale']) == (256, 256)
    # Validation (the test-set mIoU of Fig. 7) is the test fold.
    for loader in (cfg.val_dataloader, cfg.test_dataloader):
        assert loader.dataset.split == split and loader.dataset.subset == 'test'
        assert loader.dataset.get('support_draw', 'fixed') == 'fixed'
    assert cfg.val_evaluator == cfg.test_evaluator


def test_episodic_schedule_base():
    cfg = Config.fromfile(osp.join(BASE, 'schedules', 'episodic_epoch.py'))
    assert cfg.train_cfg.type == 'EpochBasedTrainLoop'
    assert cfg.train_cfg.val_interval >= 1
    assert cfg.default_hooks.checkpoint.save_best == 'mIoU'
    assert cfg.default_hooks.checkpoint.by_epoch
    assert cfg.default_hooks.train_miou.type == 'EpisodicTrainMIoUHook'
    assert cfg.default_hooks.sampler_seed.type == 'DistSamplerSeedHook'
    assert cfg.randomness.seed == 0 and cfg.log_processor.by_epoch
    assert cfg.runner_type == 'FDSegRunner'  # includes default_runtime.py


# ----------------------------------------------------------------------
# Per-epoch episodes
# ----------------------------------------------------------------------
def _dataset(root, **kw):
    kw.setdefault('pipeline', [])
    return FewShotDefectDataset(
        data_root=root, products=['texture'], support_draw='per_epoch', **kw
    )


def test_per_epoch_supports_are_fresh_and_reproducible(gfds_root):
    ds = _dataset(gfds_root)
    again = _dataset(gfds_root)
    assert len(ds) == 8  # 2 categories x 4 images, each the query once
    drawn = set()
    for epoch in range(6):
        for i in range(len(ds)):
            ep = ds.get_data_info((epoch, i))
            # A pure function of (seed, epoch, query).
            assert (
                ep['support_paths'] == again.get_data_info((epoch, i))['support_paths']
            )
            assert ep['img_path'] == ds.get_data_info((0, i))['img_path']
            assert ep['img_path'] not in ep['support_paths']
            # Supports come from the query's category.
            cat = osp.basename(osp.dirname(ep['img_path']))
            assert all(osp.basename(osp.dirname(p)) == cat for p in ep['support_paths'])
            assert ep['epoch'] == epoch
            if i == 0:
                drawn.add(tuple(ep['support_paths']))
    # Three candidates, six epochs: the draw changes between epochs.
    assert len(drawn) > 1
    # Another seed, other draws.
    other = _dataset(gfds_root, seed=1)
    assert any(
        other.get_data_info((0, i))['support_paths']
        != ds.get_data_info((0, i))['support_paths']
        for i in range(len(ds))
    )


def test_per_epoch_dataset_needs_the_episode_sampler(gfds_root):
    ds = _dataset(gfds_root)
    with pytest.raises(TypeError, match='EpisodeSampler'):
        ds[0]
    fixed = FewShotDefectDataset(data_root=gfds_root, products=['texture'])
    with pytest.raises(TypeError, match='per_epoch'):
        fixed[(0, 1)]
    with pytest.raises(ValueError, match='support_draw'):
        FewShotDefectDataset(
            data_root=gfds_root, products=['texture'], support_draw='always'
        )


_DIHEDRAL = [
    (lambda a, k=k, f=f: np.rot90(np.flip(a, 1) if f else a, k))
    for f in (False, True)
    for k in range(4)
]


def _which(plain, aug):
    """Indices of the flips/rotations mapping ``plain`` onto ``aug``."""
    return {
        i
        for i, t in enumerate(_DIHEDRAL)
        if t(plain).shape == aug.shape and np.array_equal(t(plain), aug)
    }


def test_augmentation_is_seeded_per_episode_and_shared_by_image_and_mask(gfds_root):
    size = 32
    plain = _dataset(gfds_root, pipeline=episode_pipeline(size))
    aug = _dataset(gfds_root, pipeline=episode_pipeline(size, train=True))
    changed = 0
    first = {}
    for epoch in (0, 1):
        for i in range(len(aug)):
            np.random.seed(epoch * 100 + i)  # the global state must not matter
            a = aug[(epoch, i)]
            np.random.seed(12345)
            b = aug[(epoch, i)]
            p = plain[(epoch, i)]
            sa, sp = a['data_samples'], p['data_samples']
            assert torch.equal(a['inputs'], b['inputs'])
            assert torch.equal(sa.support_imgs, b['data_samples'].support_imgs)
            # Query and each support: the image and its mask went through the
            # same flip / rotation (one of the 8), drawn per image.
            pairs = [
                (p['inputs'], sp.gt_sem_seg.data[0], a['inputs'], sa.gt_sem_seg.data[0])
            ]
            pairs += [
                (
                    sp.support_imgs[k],
                    sp.support_masks[k],
                    sa.support_imgs[k],
                    sa.support_masks[k],
                )
                for k in range(len(sa.support_imgs))
            ]
            for img0, m0, img1, m1 in pairs:
                t_img = _which(
                    img0.permute(1, 2, 0).numpy(), img1.permute(1, 2, 0).numpy()
                )
                t_mask = _which(m0.numpy(), m1.numpy())
                assert t_img and t_img & t_mask, (epoch, i)
            if epoch == 0:
                first[i] = a['inputs']
            elif not torch.equal(first[i], a['inputs']):
                changed += 1
    assert changed > 0  # epochs draw other augmentations


# ----------------------------------------------------------------------
# EpisodeSampler
# ----------------------------------------------------------------------
class _Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def _sampler(n, rank, world, epoch):
    s = EpisodeSampler(_Sized(n), shuffle=True, seed=3)
    s.rank, s.world_size = rank, world
    s.num_samples = -(-n // world)
    s.total_size = s.num_samples * world
    s.set_epoch(epoch)
    return list(s)


def test_episode_sampler_shards_like_one_process_with_the_global_batch():
    n, batch = 8, 4
    for epoch in (0, 1):
        one = _sampler(n, 0, 1, epoch)
        assert {e for e, _ in one} == {epoch}
        assert sorted(i for _, i in one) == list(range(n))
        ranks = [_sampler(n, r, 2, epoch) for r in range(2)]
        for step in range(n // batch):
            per_rank = [r[step * 2 : step * 2 + 2] for r in ranks]
            assert sorted(sum(per_rank, [])) == sorted(
                one[step * batch : (step + 1) * batch]
            )
    assert _sampler(n, 0, 1, 0) != [(0, i) for _, i in _sampler(n, 0, 1, 1)]


def test_empty_support_masks_are_drawn_again(tmp_path):
    import cv2

    from tests.conftest import write_product

    root = str(tmp_path)
    write_product(root, 'p', ['x'], n=4, size=(32, 32))
    empty = osp.join(root, 'p', 'ground_truth', 'x', 'x_001.png')
    cv2.imwrite(empty, np.zeros((32, 32), np.uint8))

    def supports(mode):
        ds = FewShotDefectDataset(
            data_root=root,
            products=['p'],
            support_draw='per_epoch',
            empty_supports=mode,
            pipeline=episode_pipeline(32),
        )
        out = []
        for epoch in range(4):
            for i in range(len(ds)):
                d = ds[(epoch, i)]
                sample = d['data_samples']
                out.append((sample.support_paths, int(sample.support_masks.sum())))
        return out

    kept = supports('keep')
    assert any(n == 0 for _, n in kept)  # the empty mask is drawn as it is
    redrawn = supports('redraw')
    assert all(n > 0 for _, n in redrawn)
    # Only the episodes that drew the empty mask changed.
    for (pk, nk), (pr, nr) in zip(kept, redrawn):
        assert (pk == pr) == (nk > 0)
