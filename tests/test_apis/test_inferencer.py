"""Inference API: pin a support set, stream queries, map back to size."""

import numpy as np
import pytest
import torch
from mmengine.dataset import pseudo_collate

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


def test_config_pipeline_and_results_equal_the_dataset_path(model, tmp_path):
    """The inferencer runs the config's test pipeline (here a non-square
    48x40 ResizeEpisode): its result for a query equals the dataset episode
    (files -> LoadEpisode -> pipeline -> model.predict) mapped back to the
    original size, mask and score map alike."""
    import cv2
    from mmengine.config import Config

    from fdseg.apis import FewShotResult
    from fdseg.datasets import FolderFewShotDataset
    from fdseg.datasets.transforms import episode_pipeline

    imgs, masks = _images(4, 2, size=(50, 60))
    (tmp_path / 'images').mkdir()
    (tmp_path / 'masks').mkdir()
    for i, (im, m) in enumerate(zip(imgs, masks)):
        cv2.imwrite(str(tmp_path / f'images/{i}.png'), im[..., ::-1])
        cv2.imwrite(str(tmp_path / f'masks/{i}.png'), m * 255)
    pipeline = episode_pipeline((48, 40))
    model.cfg = Config(dict(test_dataloader=dict(dataset=dict(pipeline=pipeline))))
    ds = FolderFewShotDataset(str(tmp_path), pipeline=pipeline)
    ep = ds[0]  # query 0.png, support 1.png
    assert ep['data_samples'].support_paths == [str(tmp_path / 'images/1.png')]
    data = model.data_preprocessor(pseudo_collate([ep]))
    ref = model.predict(data['inputs'], data['data_samples'])[0]
    assert ref.pred_sem_seg.data.shape == (1, 40, 48)

    inf = FewShotInferencer(model)
    assert inf.scale == (48, 40)
    inf.set_support(str(tmp_path / 'images/1.png'), str(tmp_path / 'masks/1.png'))
    (res,) = inf.predict(tmp_path / 'images/0.png')
    assert isinstance(res, FewShotResult) and res.name == '0.png'
    want = cv2.resize(
        ref.pred_sem_seg.data[0].numpy().astype(np.uint8),
        (60, 50),
        interpolation=cv2.INTER_NEAREST,
    )
    assert np.array_equal(res.mask, want) and want.any()
    p_bg = torch.softmax(ref.seg_logits.data, 0)[0].numpy()
    score = cv2.resize(1 - p_bg, (60, 50), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(res.score_map, score, atol=1e-6)
    assert res.score == pytest.approx(float(score.max()), abs=1e-6)
    assert res.class_names == ('background', 'defect')
    assert np.array_equal(inf(tmp_path / 'images/0.png')[0], res.mask)
    del model.cfg


def test_n_way_class_names_and_names(model):
    s_imgs, s_masks = _images(0, 2)
    inf = FewShotInferencer(model, scale=(64, 64))
    with pytest.raises(ValueError, match=r'class_names must be 2 distinct names'):
        inf.set_support(s_imgs, s_masks, labels=[1, 2], class_names=['a', 'a'])
    with pytest.raises(ValueError, match=r'masks\[0\] is empty at the network size'):
        inf.set_support(s_imgs, [np.zeros((50, 60)), s_masks[1]], empty='error')
    inf.set_support(s_imgs, s_masks, labels=[1, 2], class_names=['dent', 'scratch'])
    res = inf.predict(s_imgs, batch_size=1)
    assert [r.name for r in res] == ['image_0', 'image_1']
    assert res[0].class_names == ('background', 'dent', 'scratch')
    assert {i['class_name'] for r in res for i in r.instances} <= {'dent', 'scratch'}
    # each support is found as its own class
    assert (res[0].mask[s_masks[0] > 0] == 1).mean() > 0.5
    assert (res[1].mask[s_masks[1] > 0] == 2).mean() > 0.5


def test_model_names_and_device():
    from fdseg.apis import resolve_config
    from fdseg.apis.inference import resolve_device

    name = 'fm_filterbank_no-train_synthetic-all-1shot'
    path = resolve_config(name)
    assert path.endswith(f'configs/quickstart/{name}.py')
    assert resolve_config(f'fdseg::quickstart/{name}') == path
    with pytest.raises(FileNotFoundError, match=rf'--model {name}x: .*Did you mean'):
        resolve_config(name + 'x')
    assert resolve_device('auto') == ('cuda' if torch.cuda.is_available() else 'cpu')
