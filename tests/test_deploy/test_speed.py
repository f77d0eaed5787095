"""CPU speed paths give the official masks.

- the blockwise matcher (any ``chunk_size``) and the exact background
  coreset against the transcription of the official ``MatchingNet`` matching
  in tests/test_models/test_prototype_matcher.py;
- ``fdseg.deploy.reference.official_episode`` (the benchmark's yardstick)
  against that same transcription on a tiny PDN;
- ``compare_with_official`` / channels-last / the per-conv algorithm choice
  (``optimize_for_cpu``) on a tiny segmentor: parameters unchanged, same
  features and masks.
"""

import pytest
import torch

from fdseg.deploy.reference import official_episode
from fdseg.models.backbones import PDNStudent
from fdseg.models.heads import PrototypeMatcherHead
from fdseg.models.utils.fast_conv import FastConv2d
from tests.test_models.test_prototype_matcher import _episode, official_reference


@pytest.mark.parametrize('chunk', [0, 7, 100])
def test_blockwise_matching_equals_official(chunk):
    feat_s, masks, feat_q = _episode(3, seed=11)
    head = PrototypeMatcherHead(chunk_size=chunk)
    ours = head.predict(
        feat_q, [head.encode_support(feat_s, masks)], [dict(img_shape=(64, 64))]
    )
    ref = official_reference(
        [f[None] for f in feat_s], [m[None] for m in masks], feat_q, (64, 64)
    )
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('coreset', [0.1, 0.5, 5])
def test_coreset_keeps_the_official_mask(coreset):
    # Smooth support/query features (a shared random field + noise): the
    # query's background has near duplicates among the support's, as on
    # real images, and the defect region is a shifted copy.
    g = torch.Generator().manual_seed(0)
    base = torch.nn.functional.avg_pool2d(torch.randn(1, 16, 20, 20, generator=g), 5, 1)
    feat_s = base + 0.1 * torch.randn(1, 16, 16, 16, generator=g)
    feat_q = base + 0.1 * torch.randn(1, 16, 16, 16, generator=g)
    masks = torch.zeros(1, 64, 64, dtype=torch.long)
    masks[0, 16:40, 20:44] = 1
    feat_q[..., 2:8, 8:14] = feat_s[..., 4:10, 5:11]
    ref = official_reference([feat_s], [masks], feat_q, (64, 64)).argmax(1)
    head = PrototypeMatcherHead(bg_coreset=coreset)
    state = head.encode_support(feat_s, masks)
    nbg = int((state['groups'] == 0).sum())
    kept = int((state['groups'][state['coreset']] == 0).sum())
    assert kept == (coreset if coreset >= 1 else round(coreset * nbg))
    out = head.predict(feat_q, [state], [dict(img_shape=(64, 64))])
    assert torch.equal(out.argmax(1), ref)
    assert ref.any() and not ref.all()
    with pytest.raises(ValueError, match='cosine'):
        PrototypeMatcherHead(bg_coreset=0.5, distance='l2')


def test_official_episode_transcription():
    torch.manual_seed(0)
    net = PDNStudent(size='small', base_channels=8, out_channels=16).pdn.eval()
    sup, q = torch.randn(2, 1, 3, 64, 64)
    mask = torch.zeros(1, 64, 64, dtype=torch.long)
    mask[0, 10:30, 20:50] = 1
    with torch.no_grad():
        ours = official_episode(net, [sup], [mask], q)
        ref = official_reference([net(sup)], [mask], net(q), (64, 64))
    torch.testing.assert_close(ours, ref)


@pytest.mark.parametrize('path', ['channels_last', 'fast_conv'])
def test_compare_with_official_on_a_tiny_model(path):
    from fdseg.apis.inference import init_model
    from fdseg.deploy import compare_with_official, optimize_for_cpu, use_channels_last
    from fdseg.deploy.speed import official_network
    from fdseg.structures import EpisodeDataSample
    from fdseg.utils.config_checks import load_config

    cfg = load_config(
        'configs/fm/fm_pdn-s_no-train_synthetic-all-1shot.py',
        {
            'model.backbone.init_cfg': None,
            'model.backbone.base_channels': 8,
            'model.backbone.out_channels': 16,
        },
    )
    model = init_model(cfg, None, 'cpu')
    g = torch.Generator().manual_seed(0)
    mask = torch.zeros(1, 64, 64, dtype=torch.long)
    mask[0, 10:30, 20:50] = 1
    batches = []
    for _ in range(2):  # what the test dataloader yields (batch size 1)
        s = EpisodeDataSample()
        s.set_metainfo(dict(img_shape=(64, 64), ori_shape=(64, 64)))
        s.support_imgs = torch.randint(0, 256, (1, 3, 64, 64), generator=g).byte()
        s.support_masks = mask
        q = torch.randint(0, 256, (3, 64, 64), generator=g).byte()
        batches.append(dict(inputs=[q], data_samples=[s]))
    example = model.data_preprocessor(batches[0], False)['inputs']
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        feat = model.backbone(example)[0]
    if path == 'fast_conv':
        report = optimize_for_cpu(model, example)
        assert [r['name'] for r in report] == ['pdn.0', 'pdn.3', 'pdn.6', 'pdn.8']
        # every 3x3 / 4x4 conv had Winograd among its candidates
        assert all('winograd-4' in r['rel_error'] for r in report)
        assert all(r['choice'] in r['ms'] for r in report)
    else:
        use_channels_last(model, example)
    after = model.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    with torch.no_grad():
        torch.testing.assert_close(
            model.backbone(example)[0], feat, rtol=1e-4, atol=1e-4
        )
    net = official_network(model)
    assert all(not m._forward_pre_hooks for m in net.modules())
    assert all(type(m) is not FastConv2d for m in net.modules())
    assert all(p.is_contiguous() for p in net.parameters())
    res = compare_with_official(model, batches, num_warmup=0, num_iters=1)
    assert res['mask_agreement'] == 1.0 and res['num_queries'] == 2
    assert res['speedup_vs_official'] > 0 and res['cpu_capability']


def test_optimize_convs_never_picks_an_inexact_algorithm_beyond_max_error():
    from fdseg.deploy import optimize_convs

    torch.manual_seed(0)
    net = PDNStudent(size='small', base_channels=8, out_channels=16).pdn.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = net(x)
    report = optimize_convs(net, x, max_error=0.0)
    for r in report:
        # Winograd always differs from the direct result by rounding
        assert r['rel_error']['winograd-4'] > 0
        assert not r['choice'].startswith('winograd')
        assert r['choice'] in r['ms'] and r['rel_error'][r['choice']] == 0.0
    assert all(isinstance(m, FastConv2d) for m in net if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref, rtol=0, atol=0)
