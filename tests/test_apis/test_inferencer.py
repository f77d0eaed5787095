"""Inference API: pin a support set, stream queries, map back to size."""

import numpy as np
import pytest
import torch

from fdseg.apis import FewShotInferencer
from fdseg.registry import MODELS


def _images(seed, n, size=(50, 60)):
    rng = np.random.default_rng(seed)
    imgs, masks = [], []
    for _ in range(n):
        img = rng.integers(100, 140, (*size, 3)).astype(np.uint8)
        m = np.zeros(size, np.uint8)
        y, x = rng.integers(5, size[0] - 20), rng.integers(5, size[1] - 20)
        m[y : y + 12, x : x + 12] = 1
        img[m > 0] = (20, 200, 20)
        imgs.append(img)
        masks.append(m)
    return imgs, masks


@pytest.fixture
def model():
    return MODELS.build(
        dict(
            type='FewShotSegmentor',
            backbone=dict(type='FilterBank'),
            head=dict(type='PrototypeMatcherHead'),
        )
    ).eval()


def test_pinned_support_segments_queries_at_original_size(model):
    s_imgs, s_masks = _images(0, 2)
    q_imgs, q_masks = _images(1, 3, size=(70, 90))
    inf = FewShotInferencer(model, scale=(128, 128))
    with pytest.raises(RuntimeError, match='set_support'):
        inf(q_imgs)
    inf.set_support(s_imgs, s_masks)
    preds = inf(q_imgs, batch_size=2)
    assert len(preds) == 3
    for p, m in zip(preds, q_masks):
        assert p.shape == m.shape
        inter = ((p == 1) & (m == 1)).sum()
        union = ((p == 1) | (m == 1)).sum()
        assert inter / union > 0.5  # a bright green square is easy


def test_support_encoded_once(model, monkeypatch):
    s_imgs, s_masks = _images(0, 1)
    inf = FewShotInferencer(model, scale=(64, 64))
    calls = []
    orig = model.head.encode_support
    monkeypatch.setattr(
        model.head, 'encode_support', lambda *a, **k: calls.append(1) or orig(*a, **k)
    )
    inf.set_support(s_imgs, s_masks)
    inf(_images(2, 4)[0])
    inf(_images(3, 2)[0])
    assert len(calls) == 1


def test_bad_support_input(model):
    inf = FewShotInferencer(model, scale=(64, 64))
    imgs, masks = _images(0, 2)
    with pytest.raises(ValueError, match='as many masks as images'):
        inf.set_support(imgs, masks[:1])
    with pytest.raises(ValueError, match='support 0: mask is'):
        inf.set_support(imgs[:1], [np.zeros((3, 3), np.uint8)])


def test_segmentor_support_cache_reuses_states(model):
    from mmengine.dataset import pseudo_collate
    from mmengine.structures import PixelData

    from fdseg.structures import EpisodeDataSample

    def sample(key):
        s = EpisodeDataSample()
        s.support_imgs = torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8)
        s.support_masks = torch.zeros(1, 32, 32, dtype=torch.long)
        s.support_masks[0, 4:9, 4:9] = 1
        s.gt_sem_seg = PixelData(data=torch.zeros(1, 32, 32))
        s.set_metainfo(dict(support_key=key, img_shape=(32, 32)))
        return dict(inputs=torch.zeros(3, 32, 32, dtype=torch.uint8), data_samples=s)

    calls = []
    orig = model.head.encode_support
    model.head.encode_support = lambda *a, **k: calls.append(1) or orig(*a, **k)
    for key in ['a', 'a', 'b', 'a', None, None]:
        data = model.data_preprocessor(pseudo_collate([sample(key)]))
        model(**data, mode='predict')
    assert len(calls) == 4  # a, b, and the two uncached (None) episodes
