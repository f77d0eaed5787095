"""PATNet (GFDS Table 4) against a step-by-step transcription of the
official forward (github.com/slei109/PATNet: model/patnet.py), random
weights, 1-shot and 2-shot, two input sizes in one process; the optional
test-time anchor fine-tuning leaks nothing between episodes."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fdseg.registry import MODELS
from tests.test_models.test_hsnet import (
    OfficialLearner,
    episodes,
    official_correlation,
    official_feats,
    official_nshot,
    run_head,
    shared_resnet,
)

# ----------------------------------------------------- official transcription


def official_mask_feature(feats, mask, eps=1e-6):
    """PATNet ``mask_feature``: masked features and fg / bg prototypes."""
    masked, pf, pb = [], [], []
    for f in feats:
        m = F.interpolate(
            mask[:, None].float(), f.shape[2:], mode='bilinear', align_corners=True
        )
        bm = 1 - m
        masked.append(f * m)
        pf.append((f * m).sum((2, 3)) / (m.sum((2, 3)) + eps))
        pb.append((f * bm).sum((2, 3)) / (bm.sum((2, 3)) + eps))
    return masked, pf, pb


def official_transformation(qf, sf, pf, pb, refs, eps=1e-6):
    """``Transformation_Feature`` with the explicit C x C matrix P."""
    tq, ts = [], []
    bsz = qf[0].shape[0]
    for idx, s in enumerate(sf):
        C = torch.cat((pb[idx].unsqueeze(1), pf[idx].unsqueeze(1)), dim=1)
        R = refs[0 if idx <= 3 else 1 if idx <= 9 else 2].expand(C.shape)
        R = R / ((R * R).sum(dim=2, keepdim=True).sqrt() + eps)
        C = C / ((C * C).sum(dim=2, keepdim=True).sqrt() + eps)
        P = torch.matmul(torch.pinverse(C), R).permute(0, 2, 1)
        shape = qf[idx].shape
        tq.append(torch.matmul(P, qf[idx].view(bsz, C.size(2), -1)).view(shape))
        shape = s.shape
        ts.append(torch.matmul(P, s.view(bsz, C.size(2), -1)).view(shape))
    return tq, ts


def official_patnet(net, learner, refs, q, s, m):
    """``PATNetwork.forward``."""
    with torch.no_grad():
        qf = official_feats(q, net)
        sf, pf, pb = official_mask_feature(official_feats(s, net), m.clone())
    qf, sf = official_transformation(qf, sf, pf, pb, refs)
    corr = official_correlation(qf, sf)
    logit = learner(corr)
    return F.interpolate(logit, s.shape[2:], mode='bilinear', align_corners=True)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope='module')
def setup():
    """Backbone, a calibrated official learner + anchors, the fdseg head."""
    bb = shared_resnet()
    torch.manual_seed(5)
    learner = OfficialLearner().eval()
    head = MODELS.build(dict(type='PATNetHead', mask_downsample='bilinear')).eval()
    q, s, m = episodes(64, shots=1)
    with torch.no_grad():
        # Split the pixels between the classes (a random net is one class).
        d = official_patnet(bb, learner, list(head.anchors), q, s[:, 0], m[:, 0])
        learner.decoder2[-1].bias[1] -= (d[:, 1] - d[:, 0]).median()
    head.learner.load_state_dict(learner.state_dict())
    return bb, learner, head


def _fresh(learner):
    ref = OfficialLearner().eval()
    ref.load_state_dict(learner.state_dict())
    return ref


# ----------------------------------------------------------------------- tests


def test_anchor_init_is_kaiming_fan_in():
    head = MODELS.build(dict(type='PATNetHead'))
    assert [tuple(a.shape) for a in head.anchors] == [(2, 512), (2, 1024), (2, 2048)]
    for a in head.anchors:
        std = a.detach().std().item()
        assert abs(std * a.shape[1] ** 0.5 - 1) < 0.1  # std = 1 / sqrt(C)


def test_patnet_equals_official_1shot_2shot_two_sizes(setup):
    bb, learner, head = setup
    refs = list(head.anchors)
    for size, batch in ((64, 2), (80, 1)):
        ref_learner = _fresh(learner)
        q, s, m = episodes(size, shots=2, batch=batch)
        metas = [dict(img_shape=(size, size))] * batch
        with torch.no_grad():
            ref1 = official_patnet(bb, ref_learner, refs, q, s[:, 0], m[:, 0])
            got = head.predict_by_feat(run_head(head, bb, q, s[:, :1], m[:, :1]), metas)
            torch.testing.assert_close(got, ref1, rtol=1e-4, atol=2e-5)
            ref2 = official_nshot(
                lambda a, b, c: official_patnet(bb, ref_learner, refs, a, b, c), q, s, m
            )
            got2 = head.predict_by_feat(run_head(head, bb, q, s, m), metas)
        assert torch.equal(got2.argmax(1), ref2)
        assert 0 < ref2.float().mean() < 1  # both classes present


def test_anchor_gradients_equal_official(setup):
    """The 2-D coordinate path gives the anchors the official gradients."""
    bb, learner, head = setup
    q, s, m = episodes(64, shots=1, batch=1)
    gt = (torch.rand(1, 64, 64) > 0.6).long()
    refs = [a.detach().clone().requires_grad_(True) for a in head.anchors]
    ref = official_patnet(bb, _fresh(learner), refs, q, s[:, 0], m[:, 0])
    F.cross_entropy(ref, gt).backward()
    head.zero_grad()
    with torch.no_grad():
        qf, sf = bb(q), bb(s[0])
    logits = head(qf, [head.encode_support(sf, m[0])])
    up = F.interpolate(logits[:, 0], (64, 64), mode='bilinear', align_corners=True)
    F.cross_entropy(up, gt).backward()
    # (at 64 px the 2x2 layer4 level gives that stage's anchor no gradient)
    assert refs[0].grad.abs().max() > 0 and refs[1].grad.abs().max() > 0
    for a, r in zip(head.anchors, refs):
        torch.testing.assert_close(a.grad, r.grad, rtol=1e-3, atol=1e-7)


def test_finetune_reference_changes_nothing_between_episodes(setup):
    """TFI fine-tunes a per-episode copy: the module's anchors are
    untouched, an episode's result does not depend on the one before, and
    the fine-tuning does change the prediction (lowering its KL)."""
    bb, _, head = setup
    tfi = copy.deepcopy(head)
    tfi.finetune_reference = dict(steps=3, lr=0.05)
    before = [a.detach().clone() for a in tfi.anchors]
    metas = [dict(img_shape=(64, 64))]
    eps_a = episodes(64, shots=1, batch=1, seed=11)
    eps_b = episodes(64, shots=1, batch=1, seed=12)

    def predict(model, ep):
        q, s, m = ep
        with torch.no_grad():
            qf, sf = bb(q), bb(s[0])
            return model.predict(qf, [model.encode_support(sf, m[0])], metas)

    b_alone = predict(tfi, eps_b)
    predict(tfi, eps_a)
    b_after_a = predict(tfi, eps_b)
    assert torch.equal(b_alone, b_after_a)
    for a, b in zip(tfi.anchors, before):
        assert torch.equal(a, b)
    plain = predict(head, eps_b)
    assert not torch.allclose(plain, b_alone)
    # The KL it minimises falls.
    q, s, m = eps_b
    with torch.no_grad():
        qf, sf = bb(q), bb(s[0])
    state = tfi.encode_support(sf, m[0])
    qmask = plain.argmax(1)
    kl0 = tfi.tfi_loss(list(qf), state, qmask, list(tfi.anchors))
    tuned = tfi.finetuned_anchors(list(qf), state, qmask)
    kl1 = tfi.tfi_loss(list(qf), state, qmask, tuned)
    assert kl1 < kl0
    assert torch.equal(tuned[1], tfi.anchors[1].detach())  # first stage only
    # Training mode never fine-tunes.
    tfi.train()
    with torch.no_grad():
        q, s, m = eps_b
        train_out = tfi.predict(bb(q), [tfi.encode_support(bb(s[0]), m[0])], metas)
    assert torch.allclose(train_out, plain)


def test_finetune_reference_keys_are_checked():
    with pytest.raises(KeyError, match='iters'):
        MODELS.build(dict(type='PATNetHead', finetune_reference=dict(iters=3)))
    head = MODELS.build(dict(type='PATNetHead', finetune_reference=dict(lr=5e-5)))
    assert head.finetune_reference == dict(steps=50, lr=5e-5)


def test_empty_support_mask_gives_no_nan(setup):
    bb, _, head = setup
    with torch.no_grad():
        f = bb(torch.randn(1, 3, 64, 64))
        st = head.encode_support(f, torch.zeros(1, 64, 64))
        out = head(f, [st])
    assert torch.isfinite(out).all()
    assert isinstance(head.anchors, nn.ParameterList)
