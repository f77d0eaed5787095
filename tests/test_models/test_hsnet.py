"""HSNet (GFDS Table 4) against a step-by-step transcription of the official
forward (github.com/juhongm999/hsnet: model/hsnet.py, learner.py, base/*),
random weights, 1-shot and 2-shot, two input sizes in one process."""

import functools

import pytest
import torch
import torch.nn.functional as F
from mmengine.structures import PixelData
from torch import nn

from fdseg.registry import MODELS
from fdseg.structures import EpisodeDataSample

# ----------------------------------------------------- official transcription


class OfficialConv4d(nn.Module):
    """The official center-pivot conv, its index cache included."""

    def __init__(self, inch, outch, k, s, p):
        super().__init__()
        self.conv1 = nn.Conv2d(inch, outch, k[:2], stride=s[:2], padding=p[:2])
        self.conv2 = nn.Conv2d(inch, outch, k[2:], stride=s[2:], padding=p[2:])
        self.stride = s
        self.idx = None

    def prune(self, ct):
        b, c, ha, wa, hb, wb = ct.shape
        if self.idx is None:  # computed once, as the official module
            ih = torch.arange(0, hb, self.stride[2])
            iw = torch.arange(0, wb, self.stride[3])
            self.lh, self.lw = len(ih), len(iw)
            self.idx = (iw.repeat(self.lh, 1) + ih.repeat(self.lw, 1).t() * wb).view(-1)
        out = ct.reshape(b, c, ha, wa, -1).index_select(4, self.idx)
        return out.view(b, c, ha, wa, self.lh, self.lw)

    def forward(self, x):
        o1 = self.prune(x) if self.stride[3] > 1 else x
        b, c, ha, wa, hb, wb = o1.shape
        o1 = self.conv1(o1.permute(0, 4, 5, 1, 2, 3).reshape(-1, c, ha, wa))
        oc, oha, owa = o1.shape[-3:]
        o1 = o1.view(b, hb, wb, oc, oha, owa).permute(0, 3, 4, 5, 1, 2)
        b, c, ha, wa, hb, wb = x.shape
        o2 = self.conv2(x.permute(0, 2, 3, 1, 4, 5).reshape(-1, c, hb, wb))
        oc, ohb, owb = o2.shape[-3:]
        o2 = o2.view(b, ha, wa, oc, ohb, owb).permute(0, 3, 1, 2, 4, 5)
        return o1 + o2


def _official_block(inch, outs, ks, ss):
    layers = []
    for i, (o, k, s) in enumerate(zip(outs, ks, ss)):
        layers += [
            OfficialConv4d(
                inch if i == 0 else outs[i - 1],
                o,
                (k,) * 4,
                (1, 1, s, s),
                (k // 2,) * 4,
            ),
            nn.GroupNorm(4, o),
            nn.ReLU(inplace=True),
        ]
    return nn.Sequential(*layers)


class OfficialLearner(nn.Module):
    def __init__(self, inch=(3, 6, 4)):
        super().__init__()
        self.encoder_layer4 = _official_block(
            inch[0], [16, 64, 128], [3, 3, 3], [2, 2, 2]
        )
        self.encoder_layer3 = _official_block(
            inch[1], [16, 64, 128], [5, 3, 3], [4, 2, 2]
        )
        self.encoder_layer2 = _official_block(
            inch[2], [16, 64, 128], [5, 5, 3], [4, 4, 2]
        )
        self.encoder_layer4to3 = _official_block(128, [128] * 3, [3] * 3, [1] * 3)
        self.encoder_layer3to2 = _official_block(128, [128] * 3, [3] * 3, [1] * 3)
        self.decoder1 = nn.Sequential(
            nn.Conv2d(128, 128, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 64, 3, padding=1),
            nn.ReLU(),
        )
        self.decoder2 = nn.Sequential(
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 2, 3, padding=1)
        )

    @staticmethod
    def interp(x, size):
        b, c, ha, wa, hb, wb = x.shape
        x = x.permute(0, 4, 5, 1, 2, 3).reshape(b * hb * wb, c, ha, wa)
        x = F.interpolate(x, size, mode='bilinear', align_corners=True)
        return x.view(b, hb, wb, c, *size).permute(0, 3, 4, 5, 1, 2)

    def forward(self, pyr):
        s4 = self.encoder_layer4(pyr[0])
        s3 = self.encoder_layer3(pyr[1])
        s2 = self.encoder_layer2(pyr[2])
        m43 = self.encoder_layer4to3(self.interp(s4, s3.shape[-4:-2]) + s3)
        m432 = self.encoder_layer3to2(self.interp(m43, s2.shape[-4:-2]) + s2)
        b, c, ha, wa, hb, wb = m432.shape
        enc = m432.reshape(b, c, ha, wa, -1).mean(-1)
        dec = self.decoder1(enc)
        size = (dec.size(-1) * 2,) * 2  # official: square
        dec = F.interpolate(dec, size, mode='bilinear', align_corners=True)
        return self.decoder2(dec)


def official_feats(img, net):
    """``extract_feat_res``: bottleneck outputs 4..16 before the final ReLU."""
    feats = []
    feat = net.maxpool(net.relu(net.bn1(net.conv1(img))))
    hid = 0
    for lid, n in zip((1, 2, 3, 4), (3, 4, 6, 3)):
        for bid in range(n):
            blk = getattr(net, f'layer{lid}')[bid]
            res = feat
            feat = blk.relu(blk.bn1(blk.conv1(feat)))
            feat = blk.relu(blk.bn2(blk.conv2(feat)))
            feat = blk.bn3(blk.conv3(feat))
            if bid == 0:
                res = blk.downsample(res)
            feat = feat + res
            if hid + 1 in range(4, 17):
                feats.append(feat.clone())
            feat = blk.relu(feat)
            hid += 1
    return feats


def official_mask_feature(feats, mask):
    out = []
    for f in feats:
        m = F.interpolate(
            mask[:, None].float(), f.shape[2:], mode='bilinear', align_corners=True
        )
        out.append(f * m)
    return out


def official_correlation(qf, sf, eps=1e-5):
    corrs = []
    for q, s in zip(qf, sf):
        b, c, hb, wb = s.shape
        s = s.view(b, c, -1)
        s = s / (s.norm(dim=1, p=2, keepdim=True) + eps)
        b, c, ha, wa = q.shape
        q = q.view(b, c, -1)
        q = q / (q.norm(dim=1, p=2, keepdim=True) + eps)
        corrs.append(
            torch.bmm(q.transpose(1, 2), s).view(b, ha, wa, hb, wb).clamp(min=0)
        )
    # stack_ids = [3, 9, 13]
    return [
        torch.stack(corrs[-3:]).transpose(0, 1),
        torch.stack(corrs[-9:-3]).transpose(0, 1),
        torch.stack(corrs[-13:-9]).transpose(0, 1),
    ]


def official_hsnet(net, learner, q, s, m):
    """``HypercorrSqueezeNetwork.forward`` (use_original_imgsize=False)."""
    with torch.no_grad():
        qf = official_feats(q, net)
        sf = official_mask_feature(official_feats(s, net), m.clone())
        corr = official_correlation(qf, sf)
    logit = learner(corr)
    return F.interpolate(logit, s.shape[2:], mode='bilinear', align_corners=True)


def official_nshot(forward, q, sups, masks):
    """``predict_mask_nshot``: argmax per shot, vote, / max vote, >= 0.5."""
    agg = 0
    for k in range(sups.shape[1]):
        agg = agg + forward(q, sups[:, k], masks[:, k]).argmax(1)
        if sups.shape[1] == 1:
            return agg
    b = agg.shape[0]
    mx = agg.view(b, -1).max(1)[0]
    mx = torch.stack([mx, torch.ones_like(mx)]).max(0)[0].view(b, 1, 1)
    pred = agg.float() / mx
    return (pred >= 0.5).long()


# ------------------------------------------------------------------ fixtures


@functools.lru_cache(maxsize=None)
def shared_resnet():
    """fdseg's ResNetBottlenecks with random weights and BN statistics,
    built once per process (test_patnet shares it). Its submodules carry
    the torchvision names, so the official extraction runs on it as is."""
    torch.manual_seed(0)
    bb = MODELS.build(dict(type='ResNetBottlenecks'))
    with torch.no_grad():
        for mod in bb.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.1, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.1, 0.1)
    return bb.eval()


@pytest.fixture(scope='module')
def resnet():
    """(fdseg backbone, the same network for the official transcription)."""
    bb = shared_resnet()
    return bb, bb


def episodes(size, shots, batch=2, seed=1):
    g = torch.Generator().manual_seed(seed + size)
    q = torch.randn(batch, 3, size, size, generator=g)
    s = torch.randn(batch, shots, 3, size, size, generator=g)
    m = torch.zeros(batch, shots, size, size)
    for b in range(batch):
        for k in range(shots):  # a random rectangle per support
            y, x = torch.randint(0, size // 2, (2,), generator=g).tolist()
            m[b, k, y : y + size // 3 + 4 * k, x : x + size // 4 + 3 * b] = 1
    return q, s, m


def run_head(head, bb, q, s, m):
    """fdseg path: backbone -> encode_support per episode -> forward."""
    with torch.no_grad():
        qf = bb(q)
        states = []
        for b in range(q.shape[0]):
            sf = bb(s[b])
            states.append(head.encode_support(sf, m[b]))
        return head(qf, states)


def calibrated_learner(net, seed=3):
    """A random official learner whose last bias splits the 64-px episode's
    pixels between the classes (a random net is otherwise all one class,
    and the votes would test nothing)."""
    torch.manual_seed(seed)
    learner = OfficialLearner().eval()
    q, s, m = episodes(64, shots=1)
    with torch.no_grad():
        d = official_hsnet(net, learner, q, s[:, 0], m[:, 0])
        d = (d[:, 1] - d[:, 0]).median()
        learner.decoder2[-1].bias[1] -= d
    return learner


def build_head(cfg, official_learner):
    head = MODELS.build(cfg).eval()
    head.learner.load_state_dict(official_learner.state_dict())
    return head


# ----------------------------------------------------------------------- tests


def test_backbone_is_the_official_extraction(resnet):
    bb, net = resnet
    x = torch.randn(1, 3, 64, 48)
    with torch.no_grad():
        ours, ref = bb(x), official_feats(x, net)
    assert len(ours) == 13 and bb.stage_sizes == (4, 6, 3)
    assert [f.shape[1] for f in ours] == [512] * 4 + [1024] * 6 + [2048] * 3
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # pre-ReLU: negative values are kept
    assert all((f < 0).any() for f in ours)
    assert not any(p.requires_grad for p in bb.parameters())


def test_hsnet_equals_official_1shot_2shot_two_sizes(resnet):
    """One head, sizes 64 then 80 (the official conv4d's cached indices
    break on the second size; a fresh official learner per size is the
    reference), 1-shot logits and the 2-shot vote."""
    bb, net = resnet
    official = calibrated_learner(net)
    head = build_head(dict(type='HSNetHead', mask_downsample='bilinear'), official)
    for size, batch in ((64, 2), (80, 1)):
        ref_learner = OfficialLearner().eval()
        ref_learner.load_state_dict(official.state_dict())
        q, s, m = episodes(size, shots=2, batch=batch)
        with torch.no_grad():
            ref1 = official_hsnet(net, ref_learner, q, s[:, 0], m[:, 0])
            got = run_head(head, bb, q, s[:, :1], m[:, :1])
            metas = [dict(img_shape=(size, size))] * batch
            up = head.predict_by_feat(got, metas)
            torch.testing.assert_close(up, ref1, rtol=1e-4, atol=1e-5)
            ref2 = official_nshot(
                lambda a, b, c: official_hsnet(net, ref_learner, a, b, c), q, s, m
            )
            got2 = head.predict_by_feat(run_head(head, bb, q, s, m), metas)
        assert got2.shape == (batch, 2, size, size)
        assert torch.equal(got2.argmax(1), ref2)
        assert 0 < ref2.float().mean() < 1  # both classes present
    # The official module itself fails on a second size (what fdseg fixes).
    with torch.no_grad():
        q, s, m = episodes(64, shots=1)
        official_hsnet(net, official, q, s[:, 0], m[:, 0])
        q, s, m = episodes(80, shots=1)
        with pytest.raises((RuntimeError, IndexError)):
            official_hsnet(net, official, q, s[:, 0], m[:, 0])


def test_loss_is_official_cross_entropy(resnet):
    bb, _ = resnet
    torch.manual_seed(4)
    head = MODELS.build(dict(type='HSNetHead'))
    q, s, m = episodes(64, shots=1)
    gt = (torch.rand(2, 64, 64) > 0.7).long()
    logits = run_head(head, bb, q, s, m).requires_grad_(True)

    samples = [EpisodeDataSample(gt_sem_seg=PixelData(data=g[None])) for g in gt]
    loss = head.loss_by_feat(logits, samples)['loss_seg']
    up = F.interpolate(logits[:, 0], (64, 64), mode='bilinear', align_corners=True)
    ref = nn.CrossEntropyLoss()(up.view(2, 2, -1), gt.view(2, -1))
    torch.testing.assert_close(loss, ref)


def test_vote_threshold_ties_go_to_foreground():
    """2 shots: a pixel with 1 vote of max 2 is foreground (0.5 >= 0.5)."""
    head = MODELS.build(dict(type='HSNetHead'))
    logits = torch.zeros(1, 2, 2, 1, 3)
    logits[0, 0, 1] = torch.tensor([[5.0, 5.0, -5.0]])  # shot 0: fg, fg, bg
    logits[0, 1, 1] = torch.tensor([[5.0, -5.0, -5.0]])  # shot 1: fg, bg, bg
    out = head.predict_by_feat(logits, [dict(img_shape=(1, 3))])
    assert out.argmax(1).tolist() == [[[1, 1, 0]]]


def test_small_defect_survives_the_paper_mask_rule(resnet):
    """Paper Sec. 6: a defect that vanishes under bilinear resizing is kept
    (nearest / cover fallback) by the default 'bilinear_nearest'."""
    bb, _ = resnet
    mask = torch.zeros(1, 64, 64)
    mask[0, 5, 5] = 1
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 64))
    for mode, kept in (('bilinear', False), ('bilinear_nearest', True)):
        head = MODELS.build(dict(type='HSNetHead', mask_downsample=mode))
        st = head.encode_support(feats, mask)
        assert bool(st['feats'][-1].abs().sum() > 0) == kept, mode


def test_bad_inputs_are_named(resnet):
    bb, _ = resnet
    head = MODELS.build(dict(type='HSNetHead'))
    with torch.no_grad():
        feats = bb(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match='ResNetBottlenecks'):
        head.encode_support(feats[:3], torch.ones(1, 64, 64))
    with pytest.raises(ValueError, match='1-way'):
        head.encode_support(feats, torch.ones(1, 64, 64), torch.tensor([2]))
    st = head.encode_support(feats, torch.ones(1, 64, 64))
    with pytest.raises(ValueError, match='support states'):
        head(feats, [st, st])
