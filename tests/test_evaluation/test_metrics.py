"""Tests of fdseg.evaluation (FewShotIoUMetric and its functional core)."""

import json
import math
import os

import cv2
import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

import fdseg.evaluation.metrics.few_shot_iou_metric as metric_module
from fdseg.evaluation import FewShotIoUMetric, writers
from fdseg.evaluation import functional as F
from fdseg.registry import METRICS

# ----------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------


def mask(rows, cols, shape=(4, 4), value=1):
    """A [H, W] long mask with ``value`` on ``rows`` x ``cols`` slices."""
    m = torch.zeros(shape, dtype=torch.long)
    m[rows, cols] = value
    return m


def sample(
    pred,
    gt,
    product='P',
    category='c1',
    query_label=1,
    is_good=False,
    query_path=None,
    ori_shape=None,
):
    """A data sample as the metric receives it (``to_dict()`` form)."""
    pred = torch.as_tensor(pred).long()
    gt = torch.as_tensor(gt).long()
    shape = tuple(pred.shape[-2:])
    return dict(
        pred_sem_seg=dict(data=pred.reshape(1, *shape)),
        gt_sem_seg=dict(data=gt.reshape(1, *shape)),
        product=product,
        category=category,
        query_label=query_label,
        is_good=is_good,
        query_path=query_path or f'/data/{product}/{category}/q.png',
        ori_shape=ori_shape or shape,
        img_shape=shape,
    )


def run(metric, samples, batch_size=2):
    for i in range(0, len(samples), batch_size):
        metric.process(None, samples[i : i + batch_size])
    return metric.evaluate(len(samples))


# Hand-computed episodes on 4x4 masks (areas in the comments).
# E1, P/c1: gt rows 0-1 (8 px), pred rows 0-2 x cols 0-1 (6 px)
#   fg: I=4 U=10 | bg: gt 8, pred 10, I=6, U=12
E1 = (mask(slice(0, 3), slice(0, 2)), mask(slice(0, 2), slice(None)))
# E2, P/c1: gt (0,0) (1 px), pred (0,0),(0,1) (2 px)
#   fg: I=1 U=2 | bg: gt 15, pred 14, I=14, U=15
E2 = (mask(0, slice(0, 2)), mask(0, 0))
# E3, P/c2: gt bottom-right 2x2 (4 px), pred empty
#   fg: I=0 U=4 | bg: gt 12, pred 16, I=12, U=16
E3 = (torch.zeros(4, 4, dtype=torch.long), mask(slice(2, 4), slice(2, 4)))


def hand_samples():
    return [
        sample(*E1, category='c1'),
        sample(*E2, category='c1'),
        sample(*E3, category='c2'),
    ]


# ----------------------------------------------------------------------------
# functional
# ----------------------------------------------------------------------------


def test_episode_areas_hand_computed():
    areas = F.episode_areas(*E1)
    # rows: intersect, union, pred, label; columns: bg, fg
    np.testing.assert_array_equal(areas, [[6, 4], [12, 10], [10, 6], [8, 8]])
    assert areas.dtype == np.float64
    np.testing.assert_allclose(F.iou(areas), [0.5, 0.4])
    np.testing.assert_allclose(F.precision(areas)[F.FG], 4 / 6)
    np.testing.assert_allclose(F.recall(areas)[F.FG], 0.5)
    # [1, H, W] inputs and numpy arrays give the same record.
    np.testing.assert_array_equal(
        F.episode_areas(E1[0][None].numpy(), E1[1][None].numpy()), areas
    )


def test_episode_areas_ignore_and_nway():
    pred, gt = E1
    gt = gt.clone()
    gt[3] = 255  # last row ignored: 4 pixels that were bg in both maps
    np.testing.assert_array_equal(
        F.episode_areas(pred, gt), [[2, 4], [8, 10], [6, 6], [4, 8]]
    )
    # 2-way episode, query label 2: way-1 pixels are neither bg nor fg.
    pred = torch.tensor([[2, 2, 1, 0], [1, 0, 0, 0], [0] * 4, [0] * 4])
    gt = torch.tensor([[2, 2, 2, 0], [0, 0, 0, 0], [0] * 4, [0] * 4])
    areas = F.episode_areas(pred, gt, query_label=2)
    # fg: I=2, pred 2, gt 3 -> U=3 | bg: I=12, pred 12, gt 13 -> U=13
    np.testing.assert_array_equal(areas, [[12, 2], [13, 3], [12, 2], [13, 3]])
    with pytest.raises(ValueError, match='shape'):
        F.episode_areas(torch.zeros(4, 4), torch.zeros(4, 5))
    with pytest.raises(ValueError, match='query_label'):
        F.episode_areas(*E1, query_label=0)


def test_aggregate_hand_computed():
    areas = np.stack([F.episode_areas(*e) for e in (E1, E2, E3)])
    agg = F.aggregate_areas(areas, ['P'] * 3, ['c1', 'c1', 'c2'])
    assert agg['category_keys'] == [('P', 'c1'), ('P', 'c2')]
    cat = agg['category']
    np.testing.assert_allclose(cat['iou'], [5 / 12, 0.0])
    np.testing.assert_allclose(cat['bg_iou'], [20 / 27, 12 / 16])
    np.testing.assert_allclose(cat['precision'], [5 / 8, math.nan])
    np.testing.assert_allclose(cat['recall'], [5 / 9, 0.0])
    np.testing.assert_array_equal(cat['episodes'], [2, 1])
    prod = agg['product']
    np.testing.assert_allclose(prod['miou'], [5 / 24])
    np.testing.assert_allclose(prod['iou_f'], [5 / 16])
    np.testing.assert_allclose(prod['iou_b'], [32 / 43])
    np.testing.assert_allclose(prod['fb_iou'], [(5 / 16 + 32 / 43) / 2])
    np.testing.assert_allclose(prod['fb_iou_gfds'], [(5 / 24 + 32 / 43) / 2])
    ov = agg['overall']
    assert ov['miou'] == pytest.approx(5 / 24)
    assert ov['fb_iou_global'] == pytest.approx((5 / 16 + 32 / 43) / 2)
    # c2 predicted nothing: undefined precision is left out of the mean.
    assert ov['mprecision'] == pytest.approx(5 / 8)
    assert ov['mrecall'] == pytest.approx((5 / 9) / 2)


def test_nan_helpers():
    out = F.safe_divide(np.array([1.0, 0.0, 2.0]), np.array([2.0, 0.0, 0.0]))
    np.testing.assert_array_equal(np.isnan(out), [False, True, True])
    assert math.isnan(F.nanmean([math.nan, math.nan]))
    assert F.nanmean([math.nan, 0.5, 1.0]) == pytest.approx(0.75)


def test_resize_nearest():
    m = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(
        F.resize_nearest(m, (6, 12)), np.repeat(np.repeat(m, 2, 0), 3, 1)
    )
    for shape in [(7, 5), (2, 3), (13, 9)]:
        ref = torch.nn.functional.interpolate(
            torch.from_numpy(m)[None, None].float(), size=shape, mode='nearest-exact'
        )[0, 0].numpy()
        np.testing.assert_array_equal(F.resize_nearest(m, shape), ref)


# ----------------------------------------------------------------------------
# metric: hand-computed values, good queries, NaN categories
# ----------------------------------------------------------------------------


def test_metric_hand_computed():
    metrics = run(FewShotIoUMetric(), hand_samples())
    assert metrics['P/c1/IoU'] == 41.67
    assert metrics['P/c2/IoU'] == 0.0
    assert metrics['mIoU'] == 20.83
    assert metrics['P/mIoU'] == 20.83
    assert metrics['P/FB-IoU'] == 52.83
    assert metrics['FB-IoU'] == 52.83
    assert metrics['FB-IoU(global)'] == 52.83
    assert metrics['P/FB-IoU(gfds)'] == 47.63
    assert metrics['FB-IoU(gfds)'] == 47.63
    assert metrics['mPrecision'] == 62.5
    assert metrics['mRecall'] == 27.78
    # One category alone: both FB-IoU variants coincide.
    metrics = run(FewShotIoUMetric(), hand_samples()[:2])
    assert metrics['FB-IoU'] == metrics['FB-IoU(gfds)'] == 57.87


def test_fbiou_variants_select_keys():
    metrics = run(FewShotIoUMetric(fbiou_variants='gfds'), hand_samples())
    assert 'FB-IoU(gfds)' in metrics and 'P/FB-IoU(gfds)' in metrics
    assert not any(k.endswith('FB-IoU') or 'global' in k for k in metrics)
    metrics = run(FewShotIoUMetric(fbiou_variants=('paper',)), hand_samples())
    assert 'FB-IoU' in metrics and not any('gfds' in k for k in metrics)
    with pytest.raises(ValueError):
        FewShotIoUMetric(fbiou_variants=('coco',))
    with pytest.raises(ValueError):
        FewShotIoUMetric(good_queries='skip')


def test_good_queries_count_vs_ignore():
    good_pred = mask(3, slice(1, 4))  # 3 false-positive pixels
    zeros = torch.zeros(4, 4, dtype=torch.long)
    samples = [
        sample(*E1, category='c1'),
        sample(good_pred, zeros, category='c1', is_good=True),
    ]
    ignore = run(FewShotIoUMetric(good_queries='ignore'), samples)
    count = run(FewShotIoUMetric(good_queries='count'), samples)
    # ignore: only E1 (fg I=4 U=10; bg I=6 U=12).
    assert ignore['P/c1/IoU'] == 40.0
    assert ignore['FB-IoU'] == 45.0
    assert ignore['mPrecision'] == 66.67
    # count: fg I=4 U=13; bg I=6+13=19, U=12+16=28.
    assert count['P/c1/IoU'] == 30.77
    assert count['FB-IoU'] == round(50 * (4 / 13 + 19 / 28), 2) == 49.31
    assert count['mPrecision'] == 44.44


def test_nan_category_excluded():
    zeros = torch.zeros(4, 4, dtype=torch.long)
    samples = [
        sample(*E1, category='c1'),
        # c2 only met a defect-free query, predicted empty: union 0.
        sample(zeros, zeros, category='c2', is_good=True),
        # product Q only has such episodes.
        sample(zeros, zeros, product='Q', category='d1', is_good=True),
    ]
    for mode in ('count', 'ignore'):
        metrics = run(FewShotIoUMetric(good_queries=mode), samples)
        assert math.isnan(metrics['P/c2/IoU'])
        assert math.isnan(metrics['Q/d1/IoU'])
        assert math.isnan(metrics['Q/mIoU'])
        assert metrics['P/c1/IoU'] == metrics['P/mIoU'] == 40.0
        assert metrics['mIoU'] == 40.0
        assert metrics['mRecall'] == 50.0
    # Products' FB-IoU: Q has no foreground at all -> NaN, left out.
    assert math.isnan(metrics['Q/FB-IoU'])
    assert metrics['FB-IoU'] == metrics['P/FB-IoU'] == 45.0


def test_missing_key_raises_keyerror():
    bad = sample(*E1)
    del bad['is_good']
    with pytest.raises(KeyError, match='is_good'):
        FewShotIoUMetric().process(None, [bad])
    bad = sample(*E1)
    del bad['ori_shape']
    FewShotIoUMetric().process(None, [bad])  # not needed without saving
    with pytest.raises(KeyError, match='ori_shape'):
        FewShotIoUMetric(output_dir='/nonexistent').process(None, [bad])


# ----------------------------------------------------------------------------
# independent reference: the official GFDS evaluation
# ----------------------------------------------------------------------------


class OfficialMIoU:
    """Behaviour of GFDS ``utils.mIOU`` (confusion matrix over categories)."""

    def __init__(self, num_classes):
        self.num_classes = num_classes
        self.hist = np.zeros((num_classes, num_classes))

    def _fast_hist(self, label_pred, label_true):
        keep = (label_true >= 0) & (label_true < self.num_classes)
        return np.bincount(
            self.num_classes * label_true[keep].astype(int) + label_pred[keep],
            minlength=self.num_classes**2,
        ).reshape(self.num_classes, self.num_classes)

    def add_batch(self, predictions, gts):
        for lp, lt in zip(predictions, gts):
            self.hist += self._fast_hist(lp.flatten(), lt.flatten())

    def evaluate(self):
        hist = self.hist
        with np.errstate(invalid='ignore', divide='ignore'):
            iu = np.diag(hist) / (hist.sum(axis=1) + hist.sum(axis=0) - np.diag(hist))
        return np.nanmean(iu[1:]), (np.nanmean(iu[1:]) + iu[0]) / 2, iu


def official_gfds(episodes, layout):
    """GFDS ``main.py``: one confusion matrix per product, then averages."""
    prod_miou, prod_fb, cat_iou = {}, {}, {}
    for product, cats in layout.items():
        metric = OfficialMIoU(len(cats) + 1)
        for ep in episodes:
            if ep['product'] != product:
                continue
            cls = cats.index(ep['category']) + 1
            pred = ep['pred'].numpy().astype(np.int64).copy()
            gt = ep['gt'].numpy().astype(np.int64).copy()
            if ep['is_good']:
                gt[:] = 255  # defect-free query: mask of 255
            pred[pred == 1] = cls
            gt[gt == 1] = cls
            metric.add_batch(pred[None], gt[None])
        miou, fb, iu = metric.evaluate()
        prod_miou[product], prod_fb[product] = miou, fb
        for i, c in enumerate(cats):
            cat_iou[(product, c)] = iu[i + 1]
    n_cats = sum(len(c) for c in layout.values())
    final_miou = sum(prod_miou[p] * len(c) for p, c in layout.items()) / n_cats
    final_fb = sum(prod_fb.values()) / len(layout)
    return final_miou, final_fb, prod_miou, prod_fb, cat_iou


def random_episodes(seed=0, num=60, size=16):
    gen = torch.Generator().manual_seed(seed)
    layout = {
        'bottle': ['broken', 'crack', 'stain'],
        'wood': ['hole', 'scratch', 'color'],
    }
    episodes = []
    for i in range(num):
        product = list(layout)[i % 2]
        category = layout[product][(i // 2) % 3]
        is_good = i % 7 == 3
        gt = torch.zeros(size, size, dtype=torch.long)
        if not is_good:
            y, x = torch.randint(0, size - 4, (2,), generator=gen).tolist()
            h, w = torch.randint(1, 8, (2,), generator=gen).tolist()
            gt[y : y + h, x : x + w] = 1
        # prediction: the gt blob jittered plus random noise
        pred = torch.roll(
            gt,
            shifts=tuple(torch.randint(-2, 3, (2,), generator=gen).tolist()),
            dims=(0, 1),
        )
        pred = pred | (torch.rand(size, size, generator=gen) > 0.93).long()
        episodes.append(
            dict(product=product, category=category, is_good=is_good, pred=pred, gt=gt)
        )
    return episodes, layout


def test_matches_official_gfds_evaluation():
    episodes, layout = random_episodes()
    samples = [
        sample(
            e['pred'],
            e['gt'],
            product=e['product'],
            category=e['category'],
            is_good=e['is_good'],
        )
        for e in episodes
    ]
    metrics = run(FewShotIoUMetric(good_queries='ignore'), samples, batch_size=4)
    final_miou, final_fb, prod_miou, prod_fb, cat_iou = official_gfds(episodes, layout)

    # Unrounded values of the functional core.
    areas = np.stack(
        [
            F.episode_areas(
                e['pred'], torch.full_like(e['gt'], 255) if e['is_good'] else e['gt']
            )
            for e in episodes
        ]
    )
    agg = F.aggregate_areas(
        areas, [e['product'] for e in episodes], [e['category'] for e in episodes]
    )
    assert agg['overall']['miou'] == pytest.approx(final_miou, abs=1e-12)
    assert agg['overall']['fb_iou_gfds'] == pytest.approx(final_fb, abs=1e-12)
    for i, key in enumerate(agg['category_keys']):
        assert agg['category']['iou'][i] == pytest.approx(cat_iou[key], abs=1e-12)

    # Rounded metric outputs.
    assert metrics['mIoU'] == pytest.approx(100 * final_miou, abs=0.0051)
    assert metrics['FB-IoU(gfds)'] == pytest.approx(100 * final_fb, abs=0.0051)
    for product in layout:
        assert metrics[f'{product}/mIoU'] == pytest.approx(
            100 * prod_miou[product], abs=0.0051
        )
        assert metrics[f'{product}/FB-IoU(gfds)'] == pytest.approx(
            100 * prod_fb[product], abs=0.0051
        )
    for (product, category), value in cat_iou.items():
        assert metrics[f'{product}/{category}/IoU'] == pytest.approx(
            100 * value, abs=0.0051
        )


@pytest.mark.parametrize('mode', ['count', 'ignore'])
def test_paper_fbiou_is_pooled_eq18(mode):
    episodes, layout = random_episodes(seed=1)
    samples = [
        sample(
            e['pred'],
            e['gt'],
            product=e['product'],
            category=e['category'],
            is_good=e['is_good'],
        )
        for e in episodes
    ]
    metrics = run(FewShotIoUMetric(good_queries=mode), samples)

    def direct_fbiou(eps):
        # eq. 18 on all pixels of ``eps`` stacked into one binary problem.
        if mode == 'ignore':
            eps = [e for e in eps if not e['is_good']]
        pred = torch.stack([e['pred'] for e in eps]).bool()
        gt = torch.stack([e['gt'] for e in eps]).bool()
        iou_f = (pred & gt).sum() / (pred | gt).sum()
        iou_b = (~pred & ~gt).sum() / (~pred | ~gt).sum()
        return 50 * float(iou_f + iou_b)

    fbs = []
    for product in layout:
        value = direct_fbiou([e for e in episodes if e['product'] == product])
        fbs.append(value)
        assert metrics[f'{product}/FB-IoU'] == pytest.approx(value, abs=0.0051)
    assert metrics['FB-IoU'] == pytest.approx(np.mean(fbs), abs=0.0051)
    assert metrics['FB-IoU(global)'] == pytest.approx(
        direct_fbiou(episodes), abs=0.0051
    )


# ----------------------------------------------------------------------------
# output_dir
# ----------------------------------------------------------------------------


def visible(path):
    """Non-hidden entries under ``path`` (recursive, relative)."""
    found = []
    for root, dirs, files in os.walk(path):
        found += [os.path.relpath(os.path.join(root, n), path) for n in dirs + files]
    return sorted(found)


def test_output_dir_predictions_and_json(tmp_path):
    out = tmp_path / 'out'
    pred1 = mask(slice(0, 2), slice(1, 3))
    samples = [
        sample(
            pred1, E1[1], category='c1', query_path='/d/P/c1/001.png', ori_shape=(8, 12)
        ),
        # 2-way: only the query label (2) is foreground in the PNG.
        sample(
            torch.tensor([[2, 1, 0, 0]] * 4),
            mask(slice(None), 0, value=2),
            category='c2',
            query_label=2,
            query_path='/d/P/c2/001.jpg',
            ori_shape=(4, 4),
        ),
        sample(
            E1[0],
            torch.zeros(4, 4, dtype=torch.long),
            category='c1',
            is_good=True,
            query_path='/d/P/good/001.png',
            ori_shape=(6, 6),
        ),
        # the same query again in another episode
        sample(
            pred1, E1[1], category='c1', query_path='/d/P/c1/001.png', ori_shape=(8, 12)
        ),
    ]
    metrics = run(FewShotIoUMetric(output_dir=str(out)), samples)

    assert visible(out) == sorted(
        [
            'metrics.json',
            'predictions',
            'predictions/P',
            'predictions/P/c1',
            'predictions/P/c1/001.png',
            'predictions/P/c1/001__1.png',
            'predictions/P/c1/good',
            'predictions/P/c1/good/001.png',
            'predictions/P/c2',
            'predictions/P/c2/001.png',
        ]
    )
    assert not [n for n in os.listdir(out) if n.startswith('.tmp-')]

    png = cv2.imread(str(out / 'predictions/P/c1/001.png'), cv2.IMREAD_UNCHANGED)
    assert png.shape == (8, 12) and png.dtype == np.uint8
    expected = np.repeat(np.repeat(pred1.numpy() * 255, 2, 0), 3, 1)
    np.testing.assert_array_equal(png, expected)
    png = cv2.imread(str(out / 'predictions/P/c2/001.png'), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(png, np.array([[255, 0, 0, 0]] * 4))
    png = cv2.imread(str(out / 'predictions/P/c1/good/001.png'), cv2.IMREAD_UNCHANGED)
    assert png.shape == (6, 6) and set(np.unique(png)) == {0, 255}

    with open(out / 'metrics.json') as f:
        saved = json.load(f)
    assert saved['num_episodes'] == 4 and saved['num_good_episodes'] == 1
    assert saved['metrics'] == metrics
    assert saved['metrics']['P/c2/IoU'] == 100.0
    assert {r['category'] for r in saved['categories']} == {'c1', 'c2'}
    assert saved['products'][0]['product'] == 'P'
    assert [e['prediction'] for e in saved['episodes']] == [
        'predictions/P/c1/001.png',
        'predictions/P/c2/001.png',
        'predictions/P/c1/good/001.png',
        'predictions/P/c1/001__1.png',
    ]

    # A second round replaces the folder: no stale file survives.
    run(FewShotIoUMetric(output_dir=str(out)), samples[1:2])
    assert visible(out / 'predictions') == ['P', 'P/c2', 'P/c2/001.png']
    with open(out / 'metrics.json') as f:
        assert json.load(f)['num_episodes'] == 1


def test_output_dir_without_predictions(tmp_path):
    samples = hand_samples()
    del samples[0]['ori_shape']  # not needed when not saving
    run(FewShotIoUMetric(output_dir=str(tmp_path), save_predictions=False), samples)
    assert visible(tmp_path) == ['metrics.json']
    with open(tmp_path / 'metrics.json') as f:
        saved = json.load(f)
    # NaN (c2 precision: nothing predicted) is written as null.
    assert saved['categories'][1]['precision'] is None


def test_error_in_process_leaves_no_output(tmp_path):
    out = tmp_path / 'out'
    metric = FewShotIoUMetric(output_dir=str(out))
    metric.process(None, hand_samples()[:2])
    assert [n for n in os.listdir(out) if n.startswith('.tmp-')]
    bad = hand_samples()[2]
    del bad['category']
    with pytest.raises(KeyError, match='category'):
        metric.process(None, [bad])
    # out did not exist: the folder made for staging goes too.
    assert not out.exists()
    assert metric.results == []
    # An existing folder stays, empty.
    out.mkdir()
    metric.process(None, hand_samples()[:2])
    with pytest.raises(KeyError, match='category'):
        metric.process(None, [bad])
    assert os.listdir(out) == []


def test_error_in_compute_keeps_previous_output(tmp_path, monkeypatch):
    out = tmp_path / 'out'
    run(FewShotIoUMetric(output_dir=str(out)), hand_samples())
    before = visible(out)
    with open(out / 'metrics.json') as f:
        old_json = f.read()

    def boom(*args, **kwargs):
        raise RuntimeError('boom')

    monkeypatch.setattr(metric_module.F, 'aggregate_areas', boom)
    with pytest.raises(RuntimeError, match='boom'):
        run(FewShotIoUMetric(output_dir=str(out)), hand_samples()[:1])
    assert visible(out) == before
    assert sorted(os.listdir(out)) == ['metrics.json', 'predictions']
    with open(out / 'metrics.json') as f:
        assert f.read() == old_json

    # A failure while writing the json leaves nothing of that round either.
    monkeypatch.undo()
    monkeypatch.setattr(writers.json, 'dump', boom)
    with pytest.raises(RuntimeError, match='boom'):
        run(FewShotIoUMetric(output_dir=str(out)), hand_samples()[:1])
    assert visible(out) == before
    assert sorted(os.listdir(out)) == ['metrics.json', 'predictions']


# ----------------------------------------------------------------------------
# mmengine integration
# ----------------------------------------------------------------------------


def to_data_sample(s):
    ds = SegDataSample(
        metainfo={k: v for k, v in s.items() if k not in ('pred_sem_seg', 'gt_sem_seg')}
    )
    ds.pred_sem_seg = PixelData(data=s['pred_sem_seg']['data'])
    ds.gt_sem_seg = PixelData(data=s['gt_sem_seg']['data'])
    return ds


def test_registry_and_evaluator(tmp_path):
    metric = METRICS.build(
        dict(type='FewShotIoUMetric', output_dir=str(tmp_path), prefix='fss')
    )
    assert isinstance(metric, FewShotIoUMetric)
    evaluator = Evaluator(metric)
    samples = [to_data_sample(s) for s in hand_samples()]
    evaluator.process(data_samples=samples[:2], data_batch=None)
    evaluator.process(data_samples=samples[2:], data_batch=None)
    metrics = evaluator.evaluate(len(samples))
    assert metrics['fss/mIoU'] == 20.83
    assert metrics['fss/FB-IoU'] == 52.83
    assert metrics['fss/FB-IoU(gfds)'] == 47.63
    assert metrics['fss/P/c1/IoU'] == 41.67
    assert (tmp_path / 'metrics.json').exists()
    assert (tmp_path / 'predictions/P/c2/q.png').exists()
    # data elements passed straight to the metric work too
    assert run(FewShotIoUMetric(), samples)['mIoU'] == 20.83
