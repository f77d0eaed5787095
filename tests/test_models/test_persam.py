"""PerSAM against a step-by-step transcription of the official persam.py.

The reference below follows ZrrSkywalker/Personalize-SAM (persam.py and
its modified per_segment_anything modules) line by line on the tiny SAM
(random weights): mask through set_image's preprocessing, channel 0 > 0,
mean target, point_selection, z-score / sigmoid attention guidance added to
the *softmaxed* token-to-image attention and softmaxed again, the in-place
target-embedding addition, then the two cascaded refinements.
"""

import math
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip('segment_anything', reason='needs the sam extra')

from fdseg.models.segmentors import PerSAMSegmentor  # noqa: E402
from tests.conftest import REAL_DEFECTS_CFG, SHARED_DATA  # noqa: E402

H = W = 48


# ------------------------------------------------------------ transcription
def _attn(a, q, k, v, attn_sim=None):
    q, k, v = a.q_proj(q), a.k_proj(k), a.v_proj(v)
    q, k, v = (a._separate_heads(t, a.num_heads) for t in (q, k, v))
    attn = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])
    attn = torch.softmax(attn, dim=-1)
    if attn_sim is not None:
        attn = attn + attn_sim
        attn = torch.softmax(attn, dim=-1)
    return a.out_proj(a._recombine_heads(attn @ v))


def _block(b, queries, keys, query_pe, key_pe, attn_sim):
    if b.skip_first_layer_pe:
        queries = _attn(b.self_attn, queries, queries, queries)
    else:
        q = queries + query_pe
        queries = queries + _attn(b.self_attn, q, q, queries)
    queries = b.norm1(queries)
    q, k = queries + query_pe, keys + key_pe
    queries = b.norm2(
        queries + _attn(b.cross_attn_token_to_image, q, k, keys, attn_sim)
    )
    queries = b.norm3(queries + b.mlp(queries))
    q, k = queries + query_pe, keys + key_pe
    keys = b.norm4(keys + _attn(b.cross_attn_image_to_token, k, q, queries))
    return queries, keys


def _transformer(t, image_embedding, image_pe, point_embedding, attn_sim, target):
    image_embedding = image_embedding.flatten(2).permute(0, 2, 1)
    image_pe = image_pe.flatten(2).permute(0, 2, 1)
    queries, keys = point_embedding, image_embedding
    for layer in t.layers:
        if target is not None:
            queries += target  # in place, as the official code
        queries, keys = _block(
            layer, queries, keys, point_embedding, image_pe, attn_sim
        )
    q = queries + point_embedding
    k = keys + image_pe
    if target is not None:
        q += target
    queries = queries + _attn(t.final_attn_token_to_image, q, k, keys)
    return t.norm_final_attn(queries), keys


def _decoder(d, emb, pe, sparse, dense, multimask, attn_sim=None, target=None):
    tokens = torch.cat([d.iou_token.weight, d.mask_tokens.weight], dim=0)
    tokens = tokens.unsqueeze(0).expand(sparse.size(0), -1, -1)
    tokens = torch.cat((tokens, sparse), dim=1)
    src = torch.repeat_interleave(emb, tokens.shape[0], dim=0) + dense
    pos = torch.repeat_interleave(pe, tokens.shape[0], dim=0)
    b, c, h, w = src.shape
    hs, src = _transformer(d.transformer, src, pos, tokens, attn_sim, target)
    up = d.output_upscaling(src.transpose(1, 2).view(b, c, h, w))
    hyper = torch.stack(
        [
            d.output_hypernetworks_mlps[i](hs[:, 1 + i, :])
            for i in range(d.num_mask_tokens)
        ],
        dim=1,
    )
    b, c, h, w = up.shape
    masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
    iou = d.iou_prediction_head(hs[:, 0, :])
    sl = slice(1, None) if multimask else slice(0, 1)
    return masks[:, sl], iou[:, sl]


class _Predictor:
    """SamPredictor with PerSAM's predict(attn_sim, target_embedding)."""

    def __init__(self, sam):
        from segment_anything.utils.transforms import ResizeLongestSide

        self.model = sam
        self.transform = ResizeLongestSide(sam.image_encoder.img_size)

    def set_image(self, image, mask=None):
        x = torch.as_tensor(self.transform.apply_image(image))
        x = x.permute(2, 0, 1).contiguous()[None]
        self.original_size = image.shape[:2]
        self.input_size = tuple(x.shape[-2:])
        self.features = self.model.image_encoder(self.model.preprocess(x))
        if mask is not None:
            m = torch.as_tensor(self.transform.apply_image(mask))
            return self.model.preprocess(m.permute(2, 0, 1).contiguous()[None])

    def predict(
        self,
        coords,
        labels,
        box=None,
        mask_input=None,
        multimask=True,
        attn_sim=None,
        target=None,
    ):
        c = torch.as_tensor(
            self.transform.apply_coords(coords, self.original_size), dtype=torch.float
        )[None]
        lab = torch.as_tensor(labels, dtype=torch.int)[None]
        bx = None
        if box is not None:
            bx = torch.as_tensor(
                self.transform.apply_boxes(box, self.original_size), dtype=torch.float
            )[None]
        mi = None if mask_input is None else torch.as_tensor(mask_input)[None]
        sp, de = self.model.prompt_encoder(points=(c, lab), boxes=bx, masks=mi)
        low, iou = _decoder(
            self.model.mask_decoder,
            self.features,
            self.model.prompt_encoder.get_dense_pe(),
            sp,
            de,
            multimask,
            attn_sim,
            target,
        )
        high = self.model.postprocess_masks(low, self.input_size, self.original_size)
        self.high = high[0]
        return (high > 0)[0].numpy(), iou[0].numpy(), low[0].numpy()


def _point_selection(mask_sim, topk=1):
    w, h = mask_sim.shape
    topk_xy = mask_sim.flatten(0).topk(topk)[1]
    topk_x = (topk_xy // h).unsqueeze(0)
    topk_y = topk_xy - topk_x * h
    topk_xy = torch.cat((topk_y, topk_x), dim=0).permute(1, 0).numpy()
    last_xy = mask_sim.flatten(0).topk(topk, largest=False)[1]
    last_x = (last_xy // h).unsqueeze(0)
    last_y = last_xy - last_x * h
    last_xy = torch.cat((last_y, last_x), dim=0).permute(1, 0).numpy()
    return topk_xy, np.array([1] * topk), last_xy, np.array([0] * topk)


def official_persam(sam, ref_image, ref_mask, test_image):
    """persam.py's main loop for one test image (mask: HxWx3 0/255)."""
    predictor = _Predictor(sam)
    ref_mask = predictor.set_image(ref_image, ref_mask)
    ref_feat = predictor.features.squeeze().permute(1, 2, 0)
    ref_mask = F.interpolate(ref_mask, size=ref_feat.shape[0:2], mode='bilinear')
    ref_mask = ref_mask.squeeze()[0]
    target_feat = ref_feat[ref_mask > 0]
    target_embedding = target_feat.mean(0).unsqueeze(0)
    target_feat = target_embedding / target_embedding.norm(dim=-1, keepdim=True)
    target_embedding = target_embedding.unsqueeze(0)

    predictor.set_image(test_image)
    test_feat = predictor.features.squeeze()
    C, h, w = test_feat.shape
    test_feat = test_feat / test_feat.norm(dim=0, keepdim=True)
    sim = (target_feat @ test_feat.reshape(C, h * w)).reshape(1, 1, h, w)
    sim = F.interpolate(sim, scale_factor=4, mode='bilinear')
    sim = sam.postprocess_masks(
        sim, input_size=predictor.input_size, original_size=predictor.original_size
    ).squeeze()
    a, b, c, d = _point_selection(sim, topk=1)
    topk_xy, topk_label = np.concatenate([a, c]), np.concatenate([b, d])
    sim = (sim - sim.mean()) / torch.std(sim)
    # The official 64x64 is the ViT-H embedding grid; here the tiny one.
    sim = F.interpolate(sim[None, None], size=(h, w), mode='bilinear')
    attn_sim = sim.sigmoid_().unsqueeze(0).flatten(3)
    masks, scores, logits = predictor.predict(
        topk_xy,
        topk_label,
        multimask=False,
        attn_sim=attn_sim,
        target=target_embedding,
    )
    masks, scores, logits = predictor.predict(
        topk_xy, topk_label, mask_input=logits[0:1], multimask=True
    )
    best = np.argmax(scores)
    y, x = np.nonzero(masks[best])
    box = np.array([x.min(), y.min(), x.max(), y.max()])
    masks, scores, logits = predictor.predict(
        topk_xy,
        topk_label,
        box=box[None],
        mask_input=logits[best : best + 1],
        multimask=True,
    )
    return topk_xy, masks[np.argmax(scores)], target_feat


def _box(mask):
    y, x = np.nonzero(mask)
    return np.array([x.min(), y.min(), x.max(), y.max()])


def official_persam_f(sam, ref_image, ref_mask, test_image, epochs):
    """persam_f.py: training of the 2 weights, then one test image."""
    from fdseg.models.segmentors.persam import dice_loss, sigmoid_focal_loss

    gt_mask = torch.tensor(ref_mask)[:, :, 0] > 0
    gt_mask = gt_mask.float().unsqueeze(0).flatten(1)
    predictor = _Predictor(sam)
    with torch.no_grad():
        rm = predictor.set_image(ref_image, ref_mask)
    ref_feat = predictor.features.squeeze().permute(1, 2, 0)
    rm = F.interpolate(rm, size=ref_feat.shape[0:2], mode='bilinear').squeeze()[0]
    target_feat = ref_feat[rm > 0]
    target_feat = (target_feat.max(0)[0] / 2 + target_feat.mean(0) / 2).unsqueeze(0)
    h, w, C = ref_feat.shape
    target_feat = target_feat / target_feat.norm(dim=-1, keepdim=True)
    ref_feat = ref_feat / ref_feat.norm(dim=-1, keepdim=True)
    sim = (target_feat @ ref_feat.permute(2, 0, 1).reshape(C, h * w)).reshape(
        1, 1, h, w
    )
    sim = F.interpolate(sim, scale_factor=4, mode='bilinear')
    sim = sam.postprocess_masks(
        sim, predictor.input_size, predictor.original_size
    ).squeeze()
    topk_xy, topk_label = _point_selection(sim)[:2]
    weights_p = torch.nn.Parameter(torch.ones(2, 1) / 3)
    optimizer = torch.optim.AdamW([weights_p], lr=1e-3, eps=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
    for _ in range(epochs):
        with torch.no_grad():
            predictor.predict(topk_xy, topk_label, multimask=True)
        logits_high = predictor.high.flatten(1)
        weights = torch.cat((1 - weights_p.sum(0).unsqueeze(0), weights_p), dim=0)
        logits_high = (logits_high * weights).sum(0).unsqueeze(0)
        loss = dice_loss(logits_high, gt_mask) + sigmoid_focal_loss(
            logits_high, gt_mask
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    weights = torch.cat((1 - weights_p.sum(0).unsqueeze(0), weights_p), dim=0)
    weights = weights.detach()
    weights_np = weights.numpy()
    with torch.no_grad():
        predictor.set_image(test_image)
        test_feat = predictor.features.squeeze()
        C, h, w = test_feat.shape
        test_feat = test_feat / test_feat.norm(dim=0, keepdim=True)
        sim = (target_feat @ test_feat.reshape(C, h * w)).reshape(1, 1, h, w)
        sim = F.interpolate(sim, scale_factor=4, mode='bilinear')
        sim = sam.postprocess_masks(
            sim, predictor.input_size, predictor.original_size
        ).squeeze()
        topk_xy, topk_label = _point_selection(sim)[:2]
        masks, scores, logits = predictor.predict(topk_xy, topk_label, multimask=True)
        mask = ((predictor.high * weights.unsqueeze(-1)).sum(0) > 0).numpy()
        logit = (logits * weights_np[..., None]).sum(0)
        masks, scores, logits = predictor.predict(
            topk_xy,
            topk_label,
            box=_box(mask)[None],
            mask_input=logit[None],
            multimask=True,
        )
        best = np.argmax(scores)
        masks, scores, logits = predictor.predict(
            topk_xy,
            topk_label,
            box=_box(masks[best])[None],
            mask_input=logits[best : best + 1],
            multimask=True,
        )
    return weights.flatten(), masks[np.argmax(scores)]


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope='module')
def episode():
    g = torch.Generator().manual_seed(0)
    sup = torch.randint(0, 256, (1, 3, H, W), dtype=torch.uint8, generator=g)
    q = torch.randint(0, 256, (1, 3, H, W), dtype=torch.uint8, generator=g)
    m = torch.zeros(1, H, W)
    m[0, 10:34, 14:30] = 1
    return sup, m, q


@pytest.fixture(scope='module')
def persam():
    from mmengine.registry import init_default_scope

    init_default_scope('fdseg')
    torch.manual_seed(0)
    model = PerSAMSegmentor(sam_arch='tiny', checkpoint=None).eval()
    return model


def _np(img):
    return np.ascontiguousarray(img[0].permute(1, 2, 0).numpy())


def test_matches_official_persam(persam, episode):
    sup, m, q = episode
    with torch.no_grad():
        state = persam.encode_raw_support(sup, m)
        logits, recs = persam.segment(q.float(), [state], normalized=False)
        mask3 = np.repeat(m[0].numpy().astype(np.uint8)[..., None] * 255, 3, axis=2)
        pts, ref_mask, target = official_persam(persam.sam, _np(sup), mask3, _np(q))
    rec = recs[0][0]
    assert rec['failures'] == []
    assert rec['points'] == pts.tolist() and rec['labels'] == [1, 0]
    assert torch.allclose(state[0]['target_feat'], target, atol=1e-6)
    ours = (logits[0][1] > 0).numpy()
    assert ours.any() and np.array_equal(ours, ref_mask)
    # Deterministic: the same episode again gives the same logits.
    with torch.no_grad():
        again, _ = persam.segment(
            q.float(), [persam.encode_raw_support(sup, m)], normalized=False
        )
    assert torch.equal(again[0], logits[0])


def test_tiny_defect_vanishing_on_the_grid(persam, episode):
    """A 1-pixel defect in a corner misses every bilinear sample of the 4x4
    grid: the official mean is NaN; fdseg takes the small-defect rule."""
    sup, _, q = episode
    m = torch.zeros(1, H, W)
    m[0, 0, 0] = 1
    mask3 = np.repeat(m[0].numpy().astype(np.uint8)[..., None] * 255, 3, axis=2)
    with torch.no_grad():
        pred = _Predictor(persam.sam)
        rm = pred.set_image(_np(sup), mask3)
        cells = F.interpolate(rm, size=pred.features.shape[-2:], mode='bilinear')
        assert not (cells[0, 0] > 0).any()  # official: no cell, NaN target
        state = persam.encode_raw_support(sup, m)
        logits, recs = persam.segment(q.float(), [state], normalized=False)
    assert 'small_defect_fallback' in recs[0][0]['failures']
    assert torch.isfinite(state[0]['target_feat']).all()
    assert torch.isfinite(logits[0]).all()
    cells, fb = persam.reference_cells(m[0].bool(), (4, 4))
    assert fb and cells[0, 0] and int(cells.sum()) == 1


def test_empty_prediction_stays_empty(persam, episode, monkeypatch):
    """Refinement 2 needs the box of refinement 1's mask; when that mask is
    empty (the official x.min() crash) the empty mask is the result."""
    import fdseg.models.segmentors.persam as mod

    real = mod.decode

    def negative(*a, **k):
        high, iou, low = real(*a, **k)
        return high - 1e4, iou, low - 1e4

    monkeypatch.setattr(mod, 'decode', negative)
    sup, m, q = episode
    with torch.no_grad():
        logits, recs = persam.segment(
            q.float(), [persam.encode_raw_support(sup, m)], normalized=False
        )
    assert recs[0][0]['failures'] == ['empty_prediction']
    assert recs[0][0]['boxes'] == []
    assert not (logits[0][1] > 0).any() and logits[0].argmax(0).sum() == 0


def test_empty_support_and_one_shot_only(persam, episode):
    sup, m, q = episode
    with torch.no_grad():
        state = persam.encode_raw_support(sup, torch.zeros_like(m))
        logits, recs = persam.segment(q.float(), [state], normalized=False)
    assert state == [None] and recs[0][0]['failures'] == ['empty_support']
    assert logits[0].argmax(0).sum() == 0
    with pytest.raises(ValueError, match='one-shot'):
        persam.encode_raw_support(sup.repeat(2, 1, 1, 1), m.repeat(2, 1, 1))


def test_persam_f_matches_official(episode):
    """PerSAM-F: learnt weights and final mask equal persam_f.py's (30
    steps instead of 1000: a config key), deterministic."""
    torch.manual_seed(0)
    model = PerSAMSegmentor(
        sam_arch='tiny', checkpoint=None, variant='persam_f', persam_f_epochs=30
    ).eval()
    sup, m, q = episode
    with torch.no_grad():
        s1 = model.encode_raw_support(sup, m)
        s2 = model.encode_raw_support(sup, m)
        l1, r1 = model.segment(q.float(), [s1], normalized=False)
        l2, _ = model.segment(q.float(), [s2], normalized=False)
    w = s1[0]['weights']
    assert w.shape == (3,) and abs(float(w.sum()) - 1) < 1e-5
    assert not torch.allclose(w, torch.full((3,), 1 / 3))
    assert torch.equal(w, s2[0]['weights']) and torch.equal(l1[0], l2[0])
    assert r1[0][0]['labels'] == [1]
    mask3 = np.repeat(m[0].numpy().astype(np.uint8)[..., None] * 255, 3, axis=2)
    ref_w, ref_mask = official_persam_f(model.sam, _np(sup), mask3, _np(q), 30)
    assert torch.allclose(w, ref_w, atol=1e-6)
    ours = (l1[0][1] > 0).numpy()
    assert ours.any() and np.array_equal(ours, ref_mask)


@pytest.mark.skipif(not osp.isdir(SHARED_DATA), reason='../shared/data is absent')
def test_real_defect_episodes(persam):
    """Real NEU-Seg episodes through the test step (see test_matcher.py)."""
    from mmengine.config import Config
    from mmengine.dataset import pseudo_collate

    from fdseg.registry import DATASETS

    d = Config.fromfile(REAL_DEFECTS_CFG).test_dataloader.dataset
    d.update(data_root=SHARED_DATA, products=['neu_seg'], max_episodes_per_category=1)
    ds = DATASETS.build(d)
    with torch.no_grad():
        for i in range(len(ds)):
            s = persam.test_step(pseudo_collate([ds[i]]))[0]
            assert s.pred_sem_seg.data.shape[-2:] == tuple(s.metainfo['img_shape'][:2])
            assert torch.isfinite(s.seg_logits.data).all()
            assert s.metainfo['sam_baseline'][0]['labels'] == [1, 0]
