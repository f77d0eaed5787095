"""PFENet vs an independent transcription of the official forward.

``official_forward`` follows ``dvlab-research/PFENet`` ``model/PFENet.py``
``PFENet.forward`` step by step (shot loop, ``Weighted_GAP``, the prior's
bmm cosine / max / min-max, ``corr_query`` resized twice, the FEM loop,
``out`` resized to ``(H - 1) / 8 * 8 + 1``, main + mean auxiliary CE). The
segmentor under test is fdseg's ``FewShotSegmentor`` (``ResNetDeepStem`` +
``PFENetHead``) with the same random weights. Tolerance: ``1e-5 x max|ref|
+ 1e-6`` on logits and 1e-5 relative on losses (float32, the same operations
batched differently).
"""

import math

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import nn

from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample
from tests.test_models.test_resnet_deep_stem import (
    TINY,
    OfficialPFENetResNet,
    randomise,
)

R = 16  # reduce_dim (256 officially)
BINS = (12, 6, 3, 2)  # 12 > the 9x9 feature: the adaptive pool upsamples


def weighted_gap(supp_feat, mask):
    supp_feat = supp_feat * mask
    feat_h, feat_w = supp_feat.shape[-2:][0], supp_feat.shape[-2:][1]
    area = (
        F.avg_pool2d(mask, (supp_feat.size()[2], supp_feat.size()[3])) * feat_h * feat_w
        + 0.0005
    )
    supp_feat = (
        F.avg_pool2d(input=supp_feat, kernel_size=supp_feat.shape[-2:])
        * feat_h
        * feat_w
        / area
    )
    return supp_feat


def official_forward(bb, m, x, s_x, s_y, y=None, shot=1):
    """``PFENet.forward`` (ResNet branch, zoom_factor 8); ``m`` holds the
    head modules under their official names; no ``(H-1) % 8`` assertion."""
    x_size = x.size()
    h = int((x_size[2] - 1) / 8 * 8 + 1)
    w = int((x_size[3] - 1) / 8 * 8 + 1)
    with torch.no_grad():
        query_feat_0 = bb.layer0(x)
        query_feat_1 = bb.layer1(query_feat_0)
        query_feat_2 = bb.layer2(query_feat_1)
        query_feat_3 = bb.layer3(query_feat_2)
        query_feat_4 = bb.layer4(query_feat_3)
    query_feat = torch.cat([query_feat_3, query_feat_2], 1)
    query_feat = m.down_query(query_feat)
    supp_feat_list, final_supp_list, mask_list = [], [], []
    for i in range(shot):
        mask = (s_y[:, i, :, :] == 1).float().unsqueeze(1)
        mask_list.append(mask)
        with torch.no_grad():
            supp_feat_0 = bb.layer0(s_x[:, i, :, :, :])
            supp_feat_1 = bb.layer1(supp_feat_0)
            supp_feat_2 = bb.layer2(supp_feat_1)
            supp_feat_3 = bb.layer3(supp_feat_2)
            mask = F.interpolate(
                mask,
                size=(supp_feat_3.size(2), supp_feat_3.size(3)),
                mode='bilinear',
                align_corners=True,
            )
            supp_feat_4 = bb.layer4(supp_feat_3 * mask)
            final_supp_list.append(supp_feat_4)
        supp_feat = torch.cat([supp_feat_3, supp_feat_2], 1)
        supp_feat = m.down_supp(supp_feat)
        supp_feat = weighted_gap(supp_feat, mask)
        supp_feat_list.append(supp_feat)
    corr_query_mask_list = []
    cosine_eps = 1e-7
    for i, tmp_supp_feat in enumerate(final_supp_list):
        resize_size = tmp_supp_feat.size(2)
        tmp_mask = F.interpolate(
            mask_list[i],
            size=(resize_size, resize_size),
            mode='bilinear',
            align_corners=True,
        )
        tmp_supp_feat_4 = tmp_supp_feat * tmp_mask
        q = query_feat_4
        s = tmp_supp_feat_4
        bsize, ch_sz, sp_sz, _ = q.size()[:]
        tmp_query = q.contiguous().view(bsize, ch_sz, -1)
        tmp_query_norm = torch.norm(tmp_query, 2, 1, True)
        tmp_supp = s.contiguous().view(bsize, ch_sz, -1)
        tmp_supp = tmp_supp.contiguous().permute(0, 2, 1)
        tmp_supp_norm = torch.norm(tmp_supp, 2, 2, True)
        similarity = torch.bmm(tmp_supp, tmp_query) / (
            torch.bmm(tmp_supp_norm, tmp_query_norm) + cosine_eps
        )
        similarity = similarity.max(1)[0].view(bsize, sp_sz * sp_sz)
        similarity = (similarity - similarity.min(1)[0].unsqueeze(1)) / (
            similarity.max(1)[0].unsqueeze(1)
            - similarity.min(1)[0].unsqueeze(1)
            + cosine_eps
        )
        corr_query = similarity.view(bsize, 1, sp_sz, sp_sz)
        corr_query = F.interpolate(
            corr_query,
            size=(query_feat_3.size()[2], query_feat_3.size()[3]),
            mode='bilinear',
            align_corners=True,
        )
        corr_query_mask_list.append(corr_query)
    corr_query_mask = torch.cat(corr_query_mask_list, 1).mean(1).unsqueeze(1)
    corr_query_mask = F.interpolate(
        corr_query_mask,
        size=(query_feat.size(2), query_feat.size(3)),
        mode='bilinear',
        align_corners=True,
    )
    if shot > 1:
        supp_feat = supp_feat_list[0]
        for i in range(1, len(supp_feat_list)):
            supp_feat += supp_feat_list[i]
        supp_feat /= len(supp_feat_list)
    out_list, pyramid_feat_list = [], []
    for idx, tmp_bin in enumerate(BINS):
        bin = tmp_bin
        query_feat_bin = nn.AdaptiveAvgPool2d(bin)(query_feat)
        supp_feat_bin = supp_feat.expand(-1, -1, bin, bin)
        corr_mask_bin = F.interpolate(
            corr_query_mask, size=(bin, bin), mode='bilinear', align_corners=True
        )
        merge_feat_bin = torch.cat([query_feat_bin, supp_feat_bin, corr_mask_bin], 1)
        merge_feat_bin = m.init_merge[idx](merge_feat_bin)
        if idx >= 1:
            pre_feat_bin = pyramid_feat_list[idx - 1].clone()
            pre_feat_bin = F.interpolate(
                pre_feat_bin, size=(bin, bin), mode='bilinear', align_corners=True
            )
            rec_feat_bin = torch.cat([merge_feat_bin, pre_feat_bin], 1)
            merge_feat_bin = m.alpha_conv[idx - 1](rec_feat_bin) + merge_feat_bin
        merge_feat_bin = m.beta_conv[idx](merge_feat_bin) + merge_feat_bin
        inner_out_bin = m.inner_cls[idx](merge_feat_bin)
        merge_feat_bin = F.interpolate(
            merge_feat_bin,
            size=(query_feat.size(2), query_feat.size(3)),
            mode='bilinear',
            align_corners=True,
        )
        pyramid_feat_list.append(merge_feat_bin)
        out_list.append(inner_out_bin)
    query_feat = torch.cat(pyramid_feat_list, 1)
    query_feat = m.res1(query_feat)
    query_feat = m.res2(query_feat) + query_feat
    out = m.cls(query_feat)
    out = F.interpolate(out, size=(h, w), mode='bilinear', align_corners=True)
    if y is None:
        return out
    criterion = nn.CrossEntropyLoss(ignore_index=255)
    main_loss = criterion(out, y.long())
    aux_loss = torch.zeros_like(main_loss)
    for idx_k in range(len(out_list)):
        inner_out = F.interpolate(
            out_list[idx_k], size=(h, w), mode='bilinear', align_corners=True
        )
        aux_loss = aux_loss + criterion(inner_out, y.long())
    return main_loss, aux_loss / len(out_list)


def build_model():
    from fdseg.utils import register_all_modules

    register_all_modules()  # module-scoped: before the autouse scope fixture
    torch.manual_seed(0)
    cfg = dict(
        type='FewShotSegmentor',
        backbone=dict(type='ResNetDeepStem', frozen_stages=4, norm_eval=False, **TINY),
        head=dict(
            type='PFENetHead', in_channels=(64, 128, 256), reduce_dim=R, ppm_scales=BINS
        ),
        freeze_backbone=False,
    )
    model = MODELS.build(cfg)
    ref_bb = randomise(OfficialPFENetResNet(8, (1, 1, 2, 1)), 3)
    model.backbone.load_state_dict(
        {k: v for k, v in ref_bb.state_dict().items() if not k.startswith('fc.')}
    )
    g = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in model.head.parameters():
            fan = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=g) * 1.5 / fan**0.5)
    return model, ref_bb


@pytest.fixture(scope='module')
def model():
    return build_model()


def _episode(shot, size, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(1, 3, size, size, generator=g)
    sx = torch.randn(1, shot, 3, size, size, generator=g)
    sy = torch.zeros(1, shot, size, size, dtype=torch.long)
    y = torch.zeros(1, size, size, dtype=torch.long)
    for i in range(shot):
        sy[0, i, 8 + 4 * i : 40, 10 : 30 + 3 * i] = 1
    y[0, 20:50, 5:25] = 1
    y[0, 0, :] = 255
    return q, sx, sy, y


def _sample(sx, sy, y):
    s = EpisodeDataSample()
    s.support_imgs, s.support_masks = sx[0], sy[0]
    s.gt_sem_seg = PixelData(data=y)
    s.set_metainfo(dict(img_shape=tuple(y.shape[-2:])))
    return s


@pytest.mark.parametrize('shot,size', [(1, 65), (2, 65), (2, 64)])
def test_logits_equal_the_official_forward(model, shot, size):
    """1-shot and 2-shot at 65 (the official (H-1) % 8 == 0) and at 64."""
    seg, ref_bb = model
    seg.eval()
    q, sx, sy, y = _episode(shot, size, seed=shot + size)
    with torch.no_grad():
        ref = official_forward(ref_bb.eval(), seg.head, q, sx, sy, shot=shot)
        sample = _sample(sx, sy, y)
        ours = seg.head.predict(
            seg.backbone(q),
            [seg.encode_support(sx[0], sy[0])],
            [sample.metainfo],
        )
    assert ours.shape == ref.shape == (1, 2, size, size)
    assert (ours - ref).abs().max() <= 1e-5 * ref.abs().max() + 1e-6
    assert ref.std() > 1e-2  # not a degenerate constant map


def test_training_losses_equal_the_official_ones(model):
    """Train mode (backbone BN on batch statistics, as the official frozen
    backbone runs), dropout off, 1 episode: main and mean aux CE."""
    seg, ref_bb = model
    q, sx, sy, y = _episode(1, 65, seed=7)
    seg.train()
    drops = [(d, d.p) for d in seg.modules() if isinstance(d, nn.Dropout2d)]
    for d, _ in drops:
        d.p = 0.0
    ref_bb.train()
    bb_state = {k: v.clone() for k, v in seg.backbone.state_dict().items()}
    try:
        with torch.no_grad():
            main, aux = official_forward(ref_bb, seg.head, q, sx, sy, y=y[0:1])
        seg.backbone.load_state_dict(bb_state)  # undo running-stat updates
        losses = seg.loss(q, [_sample(sx, sy, y)])
    finally:
        for d, p in drops:
            d.p = p
        seg.backbone.load_state_dict(bb_state)
        seg.eval()
    assert losses['loss_seg'].item() == pytest.approx(main.item(), rel=1e-5)
    assert losses['loss_aux'].item() == pytest.approx(aux.item(), rel=1e-5)
    losses['loss_seg'].backward()
    assert seg.head.cls[-1].weight.grad is not None
    assert all(p.grad is None for p in seg.backbone.parameters())


def test_losses_by_hand():
    """Constant logit maps: CE = -log softmax, ignore 255, aux = mean."""
    head = MODELS.build(
        dict(type='PFENetHead', in_channels=(4, 4, 4), reduce_dim=4, aux_weight=1.0)
    )
    gt = torch.tensor([[[1, 0], [0, 255]]])
    s = EpisodeDataSample()
    s.gt_sem_seg = PixelData(data=gt)

    def const(bg, fg, size=1):
        return torch.tensor([bg, fg]).view(1, 2, 1, 1).expand(1, 2, size, size)

    main = const(0.0, math.log(3.0))  # p(fg) = 3/4
    aux = [const(0.0, 0.0, 3), const(math.log(4.0), 0.0, 2)]  # 1/2; 1/5
    losses = head.loss_by_feat(main, [s], aux)
    # 3 valid pixels: one fg, two bg.
    exp_main = (-math.log(3 / 4) - 2 * math.log(1 / 4)) / 3
    exp_a1 = -math.log(1 / 2)
    exp_a2 = (-math.log(1 / 5) - 2 * math.log(4 / 5)) / 3
    assert losses['loss_seg'].item() == pytest.approx(exp_main, abs=1e-6)
    assert losses['loss_aux'].item() == pytest.approx((exp_a1 + exp_a2) / 2, abs=1e-6)


def test_weighted_gap_and_prior_by_hand():
    """Masked GAP adds 0.0005 to the area; the prior is a min-max cosine."""
    from fdseg.models.heads.pfenet_head import weighted_gap as ours

    feat = torch.tensor([[1.0, 3.0], [5.0, 7.0]]).view(1, 1, 2, 2)
    mask = torch.tensor([[1.0, 0.0], [0.5, 0.0]]).view(1, 1, 2, 2)
    assert ours(feat, mask).item() == pytest.approx((1 + 2.5) / 1.5005, abs=1e-6)
    head = MODELS.build(dict(type='PFENetHead', in_channels=(4, 4, 4), reduce_dim=4))
    # Support: one fg pixel (1, 0) and a masked (zero) pixel; query pixels
    # (1, 0), (0, 1), (1, 1): cosine maxima 1, 0, 1/sqrt(2) -> min-max.
    supp = torch.tensor([[1.0, 0.0], [0.0, 0.0]]).t().reshape(1, 2, 1, 2)
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]).t().reshape(2, 1, 3)
    prior = head.prior(query, supp, (1, 3))
    exp = torch.tensor([1.0, 0.0, 1 / math.sqrt(2)])
    assert torch.allclose(prior.flatten(), exp, atol=1e-6)


def test_pfenet_needs_its_backbone_and_a_defect():
    head = MODELS.build(dict(type='PFENetHead', in_channels=(4, 4, 4), reduce_dim=4))
    feats = tuple(torch.randn(1, 4, 2, 2) for _ in range(3))
    with pytest.raises(RuntimeError, match='attach_backbone'):
        head.encode_support(feats, torch.ones(1, 16, 16, dtype=torch.long))
    head.attach_backbone(MODELS.build(dict(type='ResNetDeepStem', **TINY)))
    with pytest.raises(ValueError, match='no defect'):
        head.encode_support(feats, torch.zeros(1, 16, 16, dtype=torch.long))
    assert not any(k.startswith('_backbone') for k in head.state_dict())
