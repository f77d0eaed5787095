"""Matcher's stages against transcriptions of the official matcher/Matcher.py.

Matched points (bidirectional Hungarian + keep-inside-mask + top half),
seeded prompt sets (random.sample / recursive combinations) and the
filtered, merged mask, each compared with the official steps written out
here; plus the failure modes and run-to-run determinism on tiny models.
"""

import os.path as osp
import random

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

pytest.importorskip('segment_anything', reason='needs the sam extra')
pytest.importorskip('ot', reason='needs the sam extra (pot)')

from fdseg.models.segmentors.matcher import (  # noqa: E402
    hungarian_points,
    merge_masks,
    sample_prompt_sets,
)
from tests.conftest import REAL_DEFECTS_CFG, SHARED_DATA  # noqa: E402


# ------------------------------------------------------------ transcriptions
def official_points(ref_feats, tar_feat, pool, feat_size, patch, size):
    S = ref_feats @ tar_feat.t()
    S_forward = S[pool.flatten().bool()]
    fwd = linear_sum_assignment(S_forward, maximize=True)
    fwd = [torch.as_tensor(i, dtype=torch.int64) for i in fwd]
    sim_f = S_forward[fwd[0], fwd[1]]
    indices_mask = pool.flatten().nonzero()[:, 0]
    S_reverse = S.t()[fwd[1]]
    rev = linear_sum_assignment(S_reverse, maximize=True)
    rev = [torch.as_tensor(i, dtype=torch.int64) for i in rev]
    retain = torch.isin(rev[1], indices_mask)
    if not (retain == False).all().item():  # noqa: E712
        fwd = [fwd[0][retain], fwd[1][retain]]
        sim_f = sim_f[retain]
    n = len(sim_f) // 2 if len(sim_f) > 40 else len(sim_f)
    _, idx = torch.sort(sim_f, descending=True)
    inds = fwd[1][idx[:n]]
    s = torch.tensor(list(set(inds.tolist())))
    xs = (s % feat_size * patch + patch // 2).tolist()
    ys = (s // feat_size * patch + patch // 2).tolist()
    return np.array(
        [[int(x), int(y)] for x, y in zip(xs, ys) if int(x) < size and int(y) < size]
    )


def _combinations(n, k):
    if k > n:
        return []
    if k == 0:
        return [[]]
    if k == n:
        return [[i for i in range(n)]]
    res = []
    for i in range(n):
        for j in _combinations(i, k - 1):
            res.append(j + [i])
    return res


def official_sample_points(points, sample_range, max_iterations):
    out = []
    for i in range(
        min(sample_range[0], len(points)), min(sample_range[1], len(points)) + 1
    ):
        if len(points) > 8:
            index = [
                random.sample(range(len(points)), i) for j in range(max_iterations)
            ]
        else:
            index = _combinations(len(points), i)
        out.append(np.take(points, index, axis=0))
    return out


def official_merge(pred_masks, purity, coverage, emd, cfg):
    scores = cfg['alpha'] * emd + cfg['beta'] * purity * coverage ** cfg['exp']
    metric_preds = dict(purity=purity, coverage=coverage, emd=emd)
    for metric in ['coverage', 'emd', 'purity']:
        if cfg[metric + '_filter'] > 0:
            thres = min(cfg[metric + '_filter'], metric_preds[metric].max())
            idx = torch.where(metric_preds[metric] >= thres)[0]
            scores = scores[idx]
            pred_masks = pred_masks[idx]
            for key in metric_preds:
                metric_preds[key] = metric_preds[key][idx]
    if cfg['use_score_filter']:
        distances = 1 - scores
        distances, rank = torch.sort(distances, descending=False)
        distances_norm = distances - distances.min()
        distances_norm = distances_norm / (distances.max() + 1e-6)
        filer_dis = distances < cfg['deep_score_filter']
        filer_dis[..., 0] = True
        filer_dis_norm = distances_norm < cfg['deep_score_norm_filter']
        filer_dis = filer_dis * filer_dis_norm
        masks = pred_masks[rank[filer_dis][: cfg['num_merging_mask']]]
        return masks.sum(0) > 0
    topk = min(cfg['num_merging_mask'], scores.size(0))
    topk_idx = scores.topk(topk)[1]
    topk_scores = scores[topk_idx].numpy()
    if cfg['topk_scores_threshold'] > 0:
        topk_scores = topk_scores / topk_scores.max()
    idx = topk_scores > cfg['topk_scores_threshold']
    return np.sum(list(pred_masks[topk_idx][idx].numpy()[:, None]), axis=0)[0] > 0


# --------------------------------------------------------------------- tests
@pytest.mark.parametrize('nshot,fg', [(1, 50), (2, 8)])
def test_matched_points(nshot, fg):
    """> 40 matches (top half kept) and a small mask, 1 and 2 shots."""
    g = torch.Generator().manual_seed(nshot)
    fs, patch = 9, 14
    ref = torch.nn.functional.normalize(torch.randn(nshot * fs * fs, 16, generator=g))
    tar = torch.nn.functional.normalize(torch.randn(fs * fs, 16, generator=g))
    pool = torch.zeros(nshot * fs * fs)
    pool[torch.randperm(len(pool), generator=g)[: fg * nshot]] = 1
    ours, S, C = hungarian_points(ref, tar, pool, fs, patch, (126, 126))
    ref_pts = official_points(ref, tar, pool, fs, patch, 126)
    assert len(ours) > 3 and np.array_equal(ours, ref_pts)
    assert torch.allclose(C, (1 - S) / 2)


@pytest.mark.parametrize('n', [5, 12])
def test_prompt_sets_seeded(n):
    """Every subset (<= 8 points, colex order) or random.sample subsets."""
    pts = np.arange(2 * n).reshape(n, 2)
    random.seed(3)
    ref = official_sample_points(pts, (1, 6), 7)
    ours = sample_prompt_sets(pts, (1, 6), 7, random.Random(3))
    assert len(ours) == len(ref) == min(6, n)
    for a, b in zip(ours, ref):
        assert np.array_equal(a, b)
    again = sample_prompt_sets(pts, (1, 6), 7, random.Random(3))
    assert all(np.array_equal(a, b) for a, b in zip(again, ours))


@pytest.mark.parametrize('score_filter', [True, False])
def test_merged_mask(score_filter):
    from fdseg.models.segmentors.matcher import COCO_ONE_SHOT

    g = torch.Generator().manual_seed(0)
    masks = torch.rand(12, 10, 10, generator=g) > 0.7
    purity = torch.rand(12, generator=g) * 0.05
    coverage = torch.rand(12, generator=g)
    emd = 0.6 + 0.1 * torch.rand(12, generator=g)
    cfg = dict(COCO_ONE_SHOT, use_score_filter=score_filter, topk_scores_threshold=0.9)
    ours, picked = merge_masks(masks, purity, coverage, emd, cfg)
    ref = official_merge(masks, purity, coverage, emd, cfg)
    assert 0 < len(picked) < 12
    assert np.array_equal(ours.numpy(), np.asarray(ref))


@pytest.fixture(scope='module')
def matcher():
    from mmengine.registry import init_default_scope

    from fdseg.models.segmentors import MatcherSegmentor

    init_default_scope('fdseg')
    torch.manual_seed(0)
    return MatcherSegmentor(
        sam_arch='tiny',
        checkpoint=None,
        encoder=dict(
            type='DINOv2ViT',
            arch='vit_small_patch14',
            final_norm=False,
            timm_kwargs=dict(depth=1, embed_dim=32, num_heads=2),
        ),
        input_size=56,
        matcher_cfg=dict(max_sample_iterations=3, sample_range=(1, 3)),
        generator_cfg=dict(
            points_per_side=2,
            pred_iou_thresh=0.0,
            stability_score_thresh=0.0,
            sel_pred_iou_thresh=0.0,
            sel_stability_score_thresh=0.0,
        ),
        max_kmeans_retries=3,
    ).eval()


@pytest.fixture(scope='module')
def episode():
    g = torch.Generator().manual_seed(1)
    sup = torch.randint(0, 256, (1, 3, 48, 48), dtype=torch.uint8, generator=g)
    q = torch.randint(0, 256, (1, 3, 48, 48), dtype=torch.uint8, generator=g)
    m = torch.zeros(1, 48, 48)
    m[0, 8:40, 8:40] = 1
    return sup, m, q


def test_end_to_end_deterministic(matcher, episode):
    sup, m, q = episode
    with torch.no_grad():
        st = matcher.encode_raw_support(sup, m)
        a, ra = matcher.segment(q.float(), [st], normalized=False)
        b, rb = matcher.segment(q.float(), [st], normalized=False)
    assert torch.equal(a[0], b[0]) and ra == rb
    rec = ra[0][0]
    assert rec['seed'] == 0 and rec['failures'] == [] and rec['num_masks'] > 0
    assert rec['merged'] and (a[0][1] > 0).any()


def test_every_mask_filtered_out(matcher, episode):
    sup, m, q = episode
    old = dict(matcher.generator_cfg)
    matcher.generator_cfg.update(pred_iou_thresh=1e9, sel_pred_iou_thresh=1e9)
    try:
        with torch.no_grad():
            lg, rec = matcher.segment(
                q.float(), [matcher.encode_raw_support(sup, m)], normalized=False
            )
    finally:
        matcher.generator_cfg = old
    assert rec[0][0]['failures'] == ['no_mask'] and rec[0][0]['num_masks'] == 0
    assert lg[0].argmax(0).sum() == 0


def test_kmeans_retry_loop_is_bounded(matcher):
    """Fewer distinct points than centres: the official loop never ends."""
    rec = dict(failures=[])
    pts = np.array([[7, 7]] * 6 + [[21, 35]] * 4)
    centers = matcher.cluster(pts, torch.Generator().manual_seed(0), rec)
    assert rec['failures'] == ['kmeans_retry_limit'] and rec['kmeans_runs'] == 3
    assert sorted(map(tuple, centers.tolist())) == [(7, 7), (21, 35)]
    rec = dict(failures=[])
    spread = np.array([[0, 0], [0, 1], [50, 50], [51, 50]])
    matcher.matcher_cfg['num_centers'] = 2
    try:
        c = matcher.cluster(spread, torch.Generator().manual_seed(0), rec)
    finally:
        matcher.matcher_cfg['num_centers'] = 8
    assert rec['failures'] == [] and len(c) == 2


def official_mask_generation(sam, img_np, samples_list, all_points, C, pool, g, cfg):
    """Matcher's generator (_process_crop, _process_batch, _process_sel_batch,
    NMS) and mask_generation's scoring and merging, one crop layer."""
    import cv2
    import ot
    from segment_anything import SamPredictor
    from segment_anything.utils.amg import (
        batch_iterator,
        batched_mask_to_box,
        build_all_layer_point_grids,
        calculate_stability_score,
        is_box_near_crop_edge,
    )
    from torchvision.ops.boxes import batched_nms

    predictor = SamPredictor(sam)
    predictor.set_image(img_np)
    H, W = img_np.shape[:2]
    crop_box = [0, 0, W, H]
    data = dict(masks=[], iou=[], boxes=[])

    def keep_batch(masks, iou, iou_thresh, stab_thresh, offset):
        if iou_thresh > 0.0:
            k = iou > iou_thresh
            masks, iou = masks[k], iou[k]
        stab = calculate_stability_score(masks, sam.mask_threshold, offset)
        if stab_thresh > 0.0:
            k = stab >= stab_thresh
            masks, iou = masks[k], iou[k]
        masks = masks > sam.mask_threshold
        boxes = batched_mask_to_box(masks)
        k = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, W, H])
        data['masks'].append(masks[k])
        data['iou'].append(iou[k])
        data['boxes'].append(boxes[k])

    def layers(masks, iou, layer):
        if g['sel_multimask_output']:
            if layer in [0, 1, 2]:
                return masks[:, layer][:, None], iou[:, layer][:, None]
            if layer in [3, 4, 5]:
                return masks[:, layer - 3 :], iou[:, layer - 3 :]
        return masks, iou

    grid = build_all_layer_point_grids(g['points_per_side'], 0, 1)[0]
    points_for_image = grid * np.array((H, W))[None, ::-1]
    for (points,) in batch_iterator(g['points_per_batch'], points_for_image):
        tp = predictor.transform.apply_coords(points, (H, W))
        in_points = torch.as_tensor(tp)
        in_labels = torch.ones(in_points.shape[0], dtype=torch.int)
        masks, iou, _ = predictor.predict_torch(
            in_points[:, None, :],
            in_labels[:, None],
            multimask_output=g['multimask_output'],
            return_logits=True,
        )
        masks, iou = layers(masks, iou, g['output_layer'])
        keep_batch(
            masks.flatten(0, 1),
            iou.flatten(0, 1),
            g['pred_iou_thresh'],
            g['stability_score_thresh'],
            g['stability_score_offset'],
        )
    label_list = [np.ones((s.shape[0], s.shape[1])) for s in samples_list]
    for coords, labels in zip(samples_list, label_list):
        for sel_points, sel_labels in batch_iterator(
            g['points_per_batch'], coords, labels
        ):
            pc = predictor.transform.apply_coords(sel_points, (H, W))
            ct = torch.as_tensor(pc, dtype=torch.float)
            lt = torch.as_tensor(sel_labels, dtype=torch.int)
            masks, iou, _ = predictor.predict_torch(
                ct,
                lt,
                None,
                None,
                multimask_output=g['sel_multimask_output'],
                return_logits=True,
            )
            masks, iou = layers(masks, iou, g['sel_output_layer'])
            keep_batch(
                masks.flatten(0, 1),
                iou.flatten(0, 1),
                g['sel_pred_iou_thresh'],
                g['sel_stability_score_thresh'],
                g['sel_stability_score_offset'],
            )
    masks = torch.cat(data['masks'])
    iou = torch.cat(data['iou'])
    boxes = torch.cat(data['boxes'])
    keep = batched_nms(boxes.float(), iou, torch.zeros(len(boxes)), g['box_nms_thresh'])
    tar_masks = masks[keep][:, None].numpy()
    feat = int(np.sqrt(C.shape[1]))
    purity, coverage, emd = (torch.zeros(len(tar_masks)) for _ in range(3))
    for i in range(len(tar_masks)):
        m = cv2.resize(
            tar_masks[i][0].astype(np.float32),
            (feat, feat),
            interpolation=cv2.INTER_AREA,
        )
        thres = m.max() - 1e-6 if m.max() <= 0 else 0
        m = m > thres
        cost = C[pool.flatten().bool(), :][:, m.flatten()]
        e = ot.emd2(
            a=[1.0 / cost.shape[0] for _ in range(cost.shape[0])],
            b=[1.0 / cost.shape[1] for _ in range(cost.shape[1])],
            M=cost.numpy(),
        )
        pt = np.clip(all_points.astype(np.int64)[:, ::-1], 0, [H - 1, W - 1])
        inside = all_points[tar_masks[i][0][pt[:, 0], pt[:, 1]]]
        purity[i] = inside.shape[0] / max(float(m.sum()), 1.0) + 1e-6
        coverage[i] = inside.shape[0] / all_points.shape[0] + 1e-6
        emd[i] = 1 - e
    return official_merge(torch.from_numpy(tar_masks[:, 0]), purity, coverage, emd, cfg)


def test_merged_mask_matches_official_pipeline(matcher, episode):
    """Points -> seeded prompt sets -> SAM masks -> scores -> merged mask,
    with the query at the encoder size (no final resize); NMS at 1.0 keeps
    several candidates of the random model to score and merge."""
    sup, m, _ = episode
    old = dict(matcher.generator_cfg)
    matcher.generator_cfg['box_nms_thresh'] = 1.0
    g = torch.Generator().manual_seed(5)
    q = torch.randint(0, 256, (1, 3, 56, 56), dtype=torch.uint8, generator=g)
    try:
        with torch.no_grad():
            st, logits, rec, ref = _both(matcher, sup, m, q)
    finally:
        matcher.generator_cfg = old
    assert rec[0][0]['failures'] == [] and rec[0][0]['num_masks'] > 1
    assert 0 < len(rec[0][0]['merged']) < rec[0][0]['num_masks']
    ours = (logits[0][1] > 0).numpy()
    assert ours.any() and np.array_equal(ours, np.asarray(ref))


def _both(matcher, sup, m, q):
    st = matcher.encode_raw_support(sup, m)
    logits, rec = matcher.segment(q.float(), [st], normalized=False)
    qf = matcher.query_features(matcher.to_uint8(q.float(), False)[0])
    pts, S, C = hungarian_points(
        st[0]['ref_feats'], qf['tar_feat'], st[0]['ref_pool'], 4, 14, (56, 56)
    )
    random.seed(matcher.seed)
    samples = official_sample_points(
        pts,
        matcher.matcher_cfg['sample_range'],
        matcher.matcher_cfg['max_sample_iterations'],
    )
    img_np = matcher._sam_uint8(matcher._resize(matcher.to_uint8(q.float(), False)[0]))
    ref = official_mask_generation(
        matcher.sam,
        img_np,
        samples,
        pts,
        C,
        st[0]['ref_pool'],
        matcher.generator_cfg,
        matcher.matcher_cfg,
    )
    return st, logits, rec, ref


@pytest.mark.skipif(not osp.isdir(SHARED_DATA), reason='../shared/data is absent')
def test_real_defect_episodes(matcher):
    """Real NEU-Seg episodes (200x200 grayscale JPEGs) through the test
    step: a 0/1 prediction at the image size and a record per episode.
    (tools/test.py on the real data costs ~30 s of config pretty-printing
    for the real_defects declarations, so the tool itself is exercised on
    generated data in tests/test_tools/test_weights.py.)"""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from fdseg.registry import DATASETS

    d = Config.fromfile(REAL_DEFECTS_CFG).test_dataloader.dataset
    d.update(data_root=SHARED_DATA, products=['neu_seg'], max_episodes_per_category=1)
    ds = DATASETS.build(d)
    with torch.no_grad():
        for i in range(len(ds)):
            s = matcher.test_step(pseudo_collate([ds[i]]))[0]
            pred = s.pred_sem_seg.data
            assert pred.shape[-2:] == tuple(s.metainfo['img_shape'][:2])
            assert set(pred.unique().tolist()) <= {0, 1}
            assert 'seed' in s.metainfo['sam_baseline'][0]


def test_defect_lost_by_the_resize(matcher):
    """input_size 56 < a 112-pixel image: nearest drops a 1-pixel defect;
    the pooled mask comes from the small-defect rule (never empty)."""
    g = torch.Generator().manual_seed(2)
    sup = torch.randint(0, 256, (1, 3, 112, 112), dtype=torch.uint8, generator=g)
    m = torch.zeros(1, 112, 112)
    m[0, 1, 1] = 1
    with torch.no_grad():
        st = matcher.encode_raw_support(sup, m)
    assert st[0]['failures'] == ['small_defect_fallback']
    pool = st[0]['ref_pool'].reshape(4, 4)
    assert pool[0, 0] == 1 and pool.sum() == 1
