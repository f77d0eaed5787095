"""Prototype matcher vs an independent transcription of the official code.

The reference below follows the official GFDS ``MatchingNet.forward``
(liutongkun/GFDS, MatchingNet_PatchBased.py) step by step for one query:
fg pixel indices divided by the mask/feature scale and de-duplicated,
1-D unfold (3, stride 1) over the fg list when it has more than 10 vectors,
dense bg, cosine or 1/l2 similarity, max, x10, bilinear align_corners=True.
"""

import pytest
import torch
import torch.nn.functional as F

from fdseg.models.heads import PrototypeMatcherHead
from fdseg.models.utils import downsample_mask


def official_reference(feat_s, masks_s, feat_q, out_hw, distance='cosine', patch=True):
    """feat_s: list of [1,C,h,w]; masks_s: list of [1,H,W]; feat_q [1,C,h,w]."""
    fgs, bgs = [], []
    for fs, m in zip(feat_s, masks_s):
        mask = (m == 1).float()
        idx = (mask[0] == 1).nonzero()
        scale = mask.shape[1] / (fs.shape[2] + 0.000001)
        idx = (idx / scale).to(torch.int64)
        idx = torch.clamp(idx, max=feat_q.shape[2] - 1)
        idx = torch.unique(idx, dim=0)
        bgm = torch.zeros(feat_q.shape[2], feat_q.shape[2])
        bgm[idx[:, 0], idx[:, 1]] = 1
        bidx = (bgm == 0).nonzero()
        fg = fs[:, :, idx[:, 0], idx[:, 1]]
        if patch and fg.shape[-1] > 10:
            fg = fg.unfold(2, 3, 1).mean(dim=-1)
        fgs.append(fg)
        bgs.append(fs[:, :, bidx[:, 0], bidx[:, 1]])
    FP, BP = torch.cat(fgs, -1), torch.cat(bgs, -1)

    def sim(q, p):
        if distance == 'cosine':
            qn = F.normalize(q, p=2, dim=1)
            pn = F.normalize(p, p=2, dim=1)
            flat = qn.view(1, q.shape[1], -1).transpose(1, 2)
            s = torch.bmm(flat, pn).transpose(1, 2)
        else:
            qr = q.permute(0, 2, 3, 1).reshape(1, -1, q.shape[1])
            s = 1 / (torch.cdist(qr, p.permute(0, 2, 1)) + 1e-8)
            s = s.permute(0, 2, 1)
        s = s.reshape(1, p.shape[2], q.shape[2], q.shape[3])
        return s.max(dim=1)[0]

    out = torch.cat([sim(feat_q, BP)[:, None], sim(feat_q, FP)[:, None]], 1) * 10.0
    return F.interpolate(out, size=out_hw, mode='bilinear', align_corners=True)


def _episode(k, seed, c=16, h=16, H=64):
    g = torch.Generator().manual_seed(seed)
    feat_s = torch.randn(k, c, h, h, generator=g)
    feat_q = torch.randn(1, c, h, h, generator=g)
    masks = torch.zeros(k, H, H, dtype=torch.long)
    for i in range(k):
        y, x = torch.randint(0, H - 20, (2,), generator=g).tolist()
        masks[i, y : y + 5 + 3 * i, x : x + 17] = 1
        masks[i, 2, 3] = 1  # an isolated pixel, typical of thin defects
    return feat_s, masks, feat_q


@pytest.mark.parametrize('k', [1, 3])
@pytest.mark.parametrize('distance', ['cosine', 'l2'])
def test_matches_official(k, distance):
    feat_s, masks, feat_q = _episode(k, seed=k)
    head = PrototypeMatcherHead(distance=distance)
    state = head.encode_support(feat_s, masks)
    ours = head.predict(feat_q, [state], [dict(img_shape=(64, 64))])
    ref = official_reference(
        [f[None] for f in feat_s],
        [m[None] for m in masks],
        feat_q,
        (64, 64),
        distance=distance,
    )
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)
    assert torch.equal(ours.argmax(1), ref.argmax(1))


def test_dense_fg_matches_official_without_patch():
    feat_s, masks, feat_q = _episode(2, seed=7)
    head = PrototypeMatcherHead(fg_strategy='dense')
    ours = head.predict(
        feat_q, [head.encode_support(feat_s, masks)], [dict(img_shape=(64, 64))]
    )
    ref = official_reference(
        [f[None] for f in feat_s],
        [m[None] for m in masks],
        feat_q,
        (64, 64),
        patch=False,
    )
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_small_fg_set_is_not_averaged():
    # 9 fg cells (<= 10): the official code keeps them as they are.
    feat_s = torch.randn(1, 8, 8, 8)
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, 2:5, 2:5] = 1
    head = PrototypeMatcherHead()
    state = head.encode_support(feat_s, masks)
    fg = state['protos'][state['groups'] == 1]
    assert fg.shape[0] == 9
    masks[0, 2:6, 2:5] = 1  # 12 cells -> 10 windows
    state = head.encode_support(feat_s, masks)
    fg = state['protos'][state['groups'] == 1]
    cells = feat_s[0].flatten(1)[:, masks[0].flatten().bool()].t()
    expect = F.normalize((cells[:-2] + cells[1:-1] + cells[2:]) / 3, dim=1)
    torch.testing.assert_close(fg, expect)


def test_spatial_patch_and_pool_strategies():
    feat_s = torch.randn(1, 4, 6, 6)
    masks = torch.zeros(1, 6, 6, dtype=torch.long)
    masks[0, 1:3, 1:4] = 1
    head = PrototypeMatcherHead(patch_mode='spatial', bg_strategy='pool')
    state = head.encode_support(feat_s, masks)
    fg = state['protos'][state['groups'] == 1]
    bg = state['protos'][state['groups'] == 0]
    # paper reading: 3x3 mean around each fg cell, border windows shrink
    f = feat_s[0]
    exp = []
    for y in (1, 2):
        for x in (1, 2, 3):
            win = f[:, max(0, y - 1) : y + 2, max(0, x - 1) : x + 2]
            exp.append(win.mean((1, 2)))
    torch.testing.assert_close(
        fg, F.normalize(torch.stack(exp), dim=1), rtol=1e-5, atol=1e-5
    )
    bg_mean = f.flatten(1)[:, ~masks[0].flatten().bool()].mean(1)
    torch.testing.assert_close(bg, F.normalize(bg_mean[None], dim=1))


def test_empty_support_predicts_background():
    feat_s = torch.randn(1, 4, 8, 8)
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    head = PrototypeMatcherHead()
    logits = head.predict(
        torch.randn(2, 4, 8, 8),
        [head.encode_support(feat_s, masks)] * 2,
        [dict(img_shape=(32, 32))] * 2,
    )
    assert logits.shape == (2, 2, 32, 32)
    assert (logits.argmax(1) == 0).all()


def test_identical_query_recovers_support_mask():
    # Matching a support against itself with unique features labels each
    # cell as in the support mask.
    feat = torch.randn(1, 32, 8, 8)
    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, 2:4, 3:6] = 1
    head = PrototypeMatcherHead(fg_strategy='dense')
    logits = head.predict(
        feat, [head.encode_support(feat, masks)], [dict(img_shape=(8, 8))]
    )
    assert torch.equal(logits.argmax(1)[0], masks[0])


def test_two_way_labels():
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 32, 8, 8, generator=g)
    masks = torch.zeros(2, 8, 8, dtype=torch.long)
    masks[0, 0:2, 0:2] = 1
    masks[1, 5:7, 5:7] = 1
    # the query is support 1's image: only way 2's region is recovered there
    head = PrototypeMatcherHead(fg_strategy='dense', num_ways=2)
    state = head.encode_support(feat, masks, torch.tensor([1, 2]))
    pred = head.predict(feat[1:], [state], [dict(img_shape=(8, 8))]).argmax(1)
    assert set(pred.unique().tolist()) <= {0, 1, 2}
    assert (pred[0][masks[1].bool()] == 2).all()
    assert (pred[0][~masks[1].bool()] != 2).all()


def test_labels_upsampling_mode_is_nearest_of_argmax():
    feat_s, masks, feat_q = _episode(1, seed=3)
    head = PrototypeMatcherHead(upsample='labels')
    state = head.encode_support(feat_s, masks)
    low = head.forward(feat_q, [state]).argmax(1, keepdim=True).float()
    expect = F.interpolate(low, (64, 64), mode='nearest')[:, 0].long()
    got = head.predict(feat_q, [state], [dict(img_shape=(64, 64))]).argmax(1)
    assert torch.equal(got, expect)


def test_invalid_arguments_name_the_key():
    with pytest.raises(ValueError, match='fg_strategy'):
        PrototypeMatcherHead(fg_strategy='mean')
    with pytest.raises(ValueError, match='distance'):
        PrototypeMatcherHead(distance='dot')


class TestDownsampleMask:
    def test_cover_equals_official_index_mapping(self):
        m = torch.zeros(1, 256, 256, dtype=torch.long)
        m[0, 100, 37] = 1
        m[0, 255, 255] = 1
        out = downsample_mask(m, (64, 64), 'cover')
        assert out.sum() == 2
        assert out[0, 25, 9] == 1 and out[0, 63, 63] == 1

    def test_bilinear_nearest_fallback_keeps_small_defects(self):
        m = torch.zeros(2, 64, 64)
        m[0, 10, 10] = 1  # a one-pixel defect vanishes under bilinear
        m[1, 8:40, 8:40] = 1
        bil = downsample_mask(m, (8, 8), 'bilinear')
        assert (bil[0] > 0.5).sum() == 0
        out = downsample_mask(m, (8, 8), 'bilinear_nearest')
        assert (out[0] > 0.5).sum() >= 1
        # masks that survive bilinear are left as bilinear made them
        torch.testing.assert_close(out[1], bil[1])

    def test_bad_input(self):
        with pytest.raises(ValueError, match='mode'):
            downsample_mask(torch.zeros(1, 4, 4), (2, 2), 'area')
        with pytest.raises(ValueError, match=r'\[N, H, W\]'):
            downsample_mask(torch.zeros(4, 4), (2, 2))


def test_baseline_heads():
    from fdseg.models.heads import AllBackgroundHead, PasteSupportMaskHead

    masks = torch.zeros(2, 16, 16, dtype=torch.long)
    masks[0, 1:4, 1:4] = 1
    masks[1, 10:12, 5:9] = 1
    feats = torch.randn(2, 3, 4, 4)
    metas = [dict(img_shape=(16, 16))]
    head = PasteSupportMaskHead()
    pred = head.predict(feats[:1], [head.encode_support(feats, masks)], metas).argmax(1)
    assert torch.equal(pred[0], masks.amax(0))
    head = AllBackgroundHead()
    pred = head.predict(feats[:1], [head.encode_support(feats, masks)], metas).argmax(1)
    assert pred.sum() == 0 and pred.shape == (1, 16, 16)
