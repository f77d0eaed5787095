"""SSP vs an independent transcription of the official forward.

``official_forward`` follows ``fanq15/SSP`` ``model/SSP_matching.py``
(``SSP_MatchingNet.forward`` with ``refine=True``, ``SSP_func``,
``similarity_func``, ``masked_average_pooling``) step by step, on the
transcribed SSP backbone of ``test_resnet_deep_stem``; the loss is
``main.py``'s. fdseg's ``FewShotSegmentor`` (``ResNetDeepStem`` +
``SSPHead``) gets the same random weights. Tolerance: 1e-4 absolute on the
x10 cosine logits, 1e-5 relative on losses (float32).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData

from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample
from tests.test_models.test_resnet_deep_stem import (
    SSP_BB,
    TINY,
    OfficialSSPResNet,
    randomise,
)


def masked_average_pooling(feature, mask):
    mask = F.interpolate(
        mask.unsqueeze(1), size=feature.shape[-2:], mode='bilinear', align_corners=True
    )
    masked_feature = torch.sum(feature * mask, dim=(2, 3)) / (
        mask.sum(dim=(2, 3)) + 1e-5
    )
    return masked_feature


def similarity_func(feature_q, fg_proto, bg_proto):
    similarity_fg = F.cosine_similarity(feature_q, fg_proto, dim=1)
    similarity_bg = F.cosine_similarity(feature_q, bg_proto, dim=1)
    out = (
        torch.cat((similarity_bg[:, None, ...], similarity_fg[:, None, ...]), dim=1)
        * 10.0
    )
    return out


def ssp_func(feature_q, out, topk=12):
    bs = feature_q.shape[0]
    C = feature_q.shape[1]
    pred_1 = out.softmax(1)
    pred_1 = pred_1.view(bs, 2, -1)
    pred_fg = pred_1[:, 1]
    pred_bg = pred_1[:, 0]
    fg_ls, bg_ls, bg_local_ls = [], [], []
    for epi in range(bs):
        fg_thres = 0.7
        bg_thres = 0.6
        cur_feat = feature_q[epi].view(C, -1)
        f_h, f_w = feature_q[epi].shape[-2:]
        if (pred_fg[epi] > fg_thres).sum() > 0:
            fg_feat = cur_feat[:, (pred_fg[epi] > fg_thres)]
        else:
            fg_feat = cur_feat[:, torch.topk(pred_fg[epi], topk).indices]
        if (pred_bg[epi] > bg_thres).sum() > 0:
            bg_feat = cur_feat[:, (pred_bg[epi] > bg_thres)]
        else:
            bg_feat = cur_feat[:, torch.topk(pred_bg[epi], topk).indices]
        fg_proto = fg_feat.mean(-1)
        bg_proto = bg_feat.mean(-1)
        fg_ls.append(fg_proto.unsqueeze(0))
        bg_ls.append(bg_proto.unsqueeze(0))
        bg_feat_norm = bg_feat / torch.norm(bg_feat, 2, 0, True)
        cur_feat_norm = cur_feat / torch.norm(cur_feat, 2, 0, True)
        cur_feat_norm_t = cur_feat_norm.t()
        bg_sim = torch.matmul(cur_feat_norm_t, bg_feat_norm) * 2.0
        bg_sim = bg_sim.softmax(-1)
        bg_proto_local = torch.matmul(bg_sim, bg_feat.t())
        bg_proto_local = bg_proto_local.t().view(C, f_h, f_w).unsqueeze(0)
        bg_local_ls.append(bg_proto_local)
    new_fg = torch.cat(fg_ls, 0).unsqueeze(-1).unsqueeze(-1)
    new_bg = torch.cat(bg_ls, 0).unsqueeze(-1).unsqueeze(-1)
    new_bg_local = torch.cat(bg_local_ls, 0)
    return new_fg, new_bg, None, new_bg_local


def official_forward(bb, img_s_list, mask_s_list, img_q, mask_q, training):
    h, w = img_q.shape[-2:]
    feature_s_list = [bb(s) for s in img_s_list]
    feature_q = bb(img_q)
    feature_fg_list, feature_bg_list, supp_out_ls = [], [], []
    for k in range(len(img_s_list)):
        feature_fg = masked_average_pooling(
            feature_s_list[k], (mask_s_list[k] == 1).float()
        )[None, :]
        feature_bg = masked_average_pooling(
            feature_s_list[k], (mask_s_list[k] == 0).float()
        )[None, :]
        feature_fg_list.append(feature_fg)
        feature_bg_list.append(feature_bg)
        if training:
            supp_out = similarity_func(
                feature_s_list[k],
                feature_fg.squeeze(0)[..., None, None],
                feature_bg.squeeze(0)[..., None, None],
            )
            supp_out = F.interpolate(
                supp_out, size=(h, w), mode='bilinear', align_corners=True
            )
            supp_out_ls.append(supp_out)
    FP = (
        torch.mean(torch.cat(feature_fg_list, dim=0), dim=0).unsqueeze(-1).unsqueeze(-1)
    )
    BP = (
        torch.mean(torch.cat(feature_bg_list, dim=0), dim=0).unsqueeze(-1).unsqueeze(-1)
    )
    out_0 = similarity_func(feature_q, FP, BP)
    SSFP_1, SSBP_1, ASFP_1, ASBP_1 = ssp_func(feature_q, out_0)
    FP_1 = FP * 0.5 + SSFP_1 * 0.5
    BP_1 = SSBP_1 * 0.3 + ASBP_1 * 0.7
    out_1 = similarity_func(feature_q, FP_1, BP_1)
    SSFP_2, SSBP_2, ASFP_2, ASBP_2 = ssp_func(feature_q, out_1)
    FP_2 = FP * 0.5 + SSFP_2 * 0.5
    BP_2 = SSBP_2 * 0.3 + ASBP_2 * 0.7
    FP_2 = FP * 0.5 + FP_1 * 0.2 + FP_2 * 0.3
    BP_2 = BP * 0.5 + BP_1 * 0.2 + BP_2 * 0.3
    out_2 = similarity_func(feature_q, FP_2, BP_2)
    out_2 = out_2 * 0.7 + out_1 * 0.3
    out_1 = F.interpolate(out_1, size=(h, w), mode='bilinear', align_corners=True)
    out_2 = F.interpolate(out_2, size=(h, w), mode='bilinear', align_corners=True)
    out_ls = [out_2, out_1]
    if not training:
        return out_ls
    fg_q = masked_average_pooling(feature_q, (mask_q == 1).float())[None, :].squeeze(0)
    bg_q = masked_average_pooling(feature_q, (mask_q == 0).float())[None, :].squeeze(0)
    self_out = similarity_func(feature_q, fg_q[..., None, None], bg_q[..., None, None])
    self_out = F.interpolate(self_out, size=(h, w), mode='bilinear', align_corners=True)
    supp_out = torch.cat(supp_out_ls, 0)
    out_ls.append(self_out)
    out_ls.append(supp_out)
    return out_ls


def official_loss(out_ls, mask_q, mask_s_list):
    criterion = torch.nn.CrossEntropyLoss(ignore_index=255)
    mask_s = torch.cat(mask_s_list, dim=0)
    return (
        criterion(out_ls[0], mask_q)
        + criterion(out_ls[1], mask_q)
        + criterion(out_ls[2], mask_q)
        + criterion(out_ls[3], mask_s) * 0.2
    )


@pytest.fixture(scope='module')
def model():
    from fdseg.utils import register_all_modules

    register_all_modules()
    torch.manual_seed(0)
    seg = MODELS.build(
        dict(
            type='FewShotSegmentor',
            backbone=dict(SSP_BB, **TINY),
            head=dict(type='SSPHead'),
            freeze_backbone=False,
        )
    )
    ref = randomise(OfficialSSPResNet(8, (1, 1, 2)), 5)
    seg.backbone.load_pretrained_state_dict(ref.state_dict())
    return seg, ref


def _episode(shot, size, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 3, size, size, generator=g)
    sx = torch.randn(shot, 3, size, size, generator=g)
    sy = torch.zeros(shot, size, size, dtype=torch.long)
    for i in range(shot):
        sy[i, 6 + 3 * i : 30, 8 : 28 + 2 * i] = 1
    y = torch.zeros(1, size, size, dtype=torch.long)
    y[0, 16:40, 4:26] = 1
    y[0, -1] = 255
    return q, sx, sy, y


def _sample(sx, sy, y):
    s = EpisodeDataSample()
    s.support_imgs, s.support_masks = sx, sy
    s.gt_sem_seg = PixelData(data=y)
    s.set_metainfo(dict(img_shape=tuple(y.shape[-2:])))
    return s


@pytest.mark.parametrize('shot', [1, 2])
def test_logits_equal_the_official_forward(model, shot):
    seg, ref = model
    seg.eval()
    q, sx, sy, y = _episode(shot, 41, seed=shot)  # 6x6 features (>= top-12)
    with torch.no_grad():
        out2, out1 = official_forward(
            ref, [sx[i : i + 1] for i in range(shot)], list(sy[:, None]), q, y, False
        )
        ours = seg.predict(q, [_sample(sx, sy, y)])[0].seg_logits.data
    assert (ours - out2[0]).abs().max() < 1e-4
    assert out2.std() > 0.1


def test_training_loss_equals_the_official_one(model):
    """Layer2-3 train, every BN in eval mode, as main.py sets them."""
    seg, ref = model
    seg.train()
    assert not seg.backbone.layer2[0].bn1.training
    q, sx, sy, y = _episode(2, 41, seed=3)
    with torch.no_grad():
        out_ls = official_forward(
            ref, [sx[i : i + 1] for i in range(2)], list(sy[:, None]), q, y, True
        )
        expected = official_loss(out_ls, y, list(sy[:, None]))
    losses = seg.loss(q, [_sample(sx, sy, y)])
    total = sum(losses.values())
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    total.backward()
    assert seg.backbone.layer3[0].conv1.weight.grad is not None
    assert seg.backbone.layer1[0].conv1.weight.grad is None
    seg.zero_grad()
    seg.eval()


def _head(**kw):
    return MODELS.build(dict(type='SSPHead', **kw))


def test_self_support_by_hand():
    """Six query pixels (C = 2); FP = (1, 0), BP = (0, 1).

    p0 = (1, 0), p1 = (2, 0): cos fg 1, bg 0 -> p(fg) = s(10) > 0.7.
    p2 = (0, 1): bg, p(bg) = s(10) > 0.6.  p3 = (1, 1): both cos 1/sqrt2 ->
    p = 0.5, in neither set.  p4 = (-1, 0): cos fg -1, bg 0 -> p(bg) =
    s(10), bg.  p5 = (0, 2): bg.
    Global: SSFP = mean(p0, p1) = (1.5, 0); SSBP = mean(p2, p4, p5) =
    (-1/3, 1).  Local bg at pixel x: softmax over bg pixels of 2 cos(x, b)
    weighting (0, 1), (-1, 0), (0, 2).
    """
    feat = torch.tensor([[1.0, 2, 0, 1, -1, 0], [0, 0, 1, 1, 0, 2]]).view(1, 2, 1, 6)
    head = _head()
    fp = torch.tensor([1.0, 0]).view(1, 2, 1, 1)
    out0 = head.similarity(feat, fp, fp.flip(1))
    ssfp, ssbp, asbp = head.self_support(feat, out0)
    assert torch.allclose(ssfp.flatten(), torch.tensor([1.5, 0.0]))
    assert torch.allclose(ssbp.flatten(), torch.tensor([-1 / 3, 1.0]))
    bgs = [(0.0, 1.0), (-1.0, 0.0), (0.0, 2.0)]
    for j in range(6):
        x = feat[0, :, 0, j]
        n = math.hypot(*x.tolist())
        cos = [(x[0] * b[0] + x[1] * b[1]).item() / (n * math.hypot(*b)) for b in bgs]
        e = [math.exp(2 * c) for c in cos]
        wts = [v / sum(e) for v in e]
        exp = [sum(w * b[i] for w, b in zip(wts, bgs)) for i in range(2)]
        assert torch.allclose(asbp[0, :, 0, j], torch.tensor(exp), atol=1e-6), j


def test_self_support_top_k_fallback():
    """No pixel passes a threshold: the k most probable pixels are used."""
    feat = torch.tensor([[1.0, 2, 3, 4], [0, 0, 5, 1]]).view(1, 2, 1, 4)
    # p(fg) = sigmoid(fg - bg): 0.55, 0.6, 0.65, 0.5 -> top-2 fg = p2, p1;
    # p(bg) 0.45 .. 0.5 < 0.6 -> top-2 bg = p3, p0.
    d = torch.tensor([0.2007, 0.4055, 0.6190, 0.0])
    logits = torch.stack([torch.zeros(4), d]).view(1, 2, 1, 4)
    ssfp, ssbp, _ = _head(topk=2).self_support(feat, logits)
    assert torch.allclose(ssfp.flatten(), torch.tensor([2.5, 2.5]))
    assert torch.allclose(ssbp.flatten(), torch.tensor([2.5, 0.5]))
    ssfp, _, _ = _head(topk=1).self_support(feat, logits)
    assert torch.allclose(ssfp.flatten(), torch.tensor([3.0, 5.0]))


def test_support_and_self_losses_by_hand():
    """Support pixels equal to their own prototypes: logits [0, 10] on fg,
    [10, 0] on bg -> CE = log(1 + e^-10) each; weight 0.2."""
    head = _head(mask_downsample='nearest').train()
    feat = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    masks = torch.tensor([[[1, 0]]])
    state = head.encode_support(feat, masks)
    assert torch.allclose(state['fg'].flatten(), torch.tensor([1.0, 0.0]), atol=1e-4)
    ce = math.log1p(math.exp(-10))
    loss = head.ce(state['logits'], masks)
    assert loss.item() == pytest.approx(ce, rel=1e-3)  # float32 log-softmax
