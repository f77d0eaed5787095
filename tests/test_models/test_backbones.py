"""Backbones vs independent references (random weights, tiny inputs)."""

import math
import os.path as osp
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fdseg.registry import MODELS
from fdseg.utils import checkpoints as ck
from tests.conftest import REPO


@pytest.fixture
def ckpt_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(ck.ENV_CHECKPOINT_DIR, str(tmp_path))
    return tmp_path


def _quiet_init(model):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # "no sha256 recorded" warnings
        model.init_weights()
    return model


# --------------------------------------------------------------------- PDN
def reference_student(c, large, out=384):
    """GFDS student written from paper Table 3 (+ EfficientAD large PDN).

    Table 3 rows: Conv 3->c k4 p3 + ReLU; AvgPool k2 s2 p1; Conv c->2c k4 p3
    + ReLU; AvgPool k2 s2 p1; Conv 2c->2c k3 p1 + ReLU; Conv 2c->384 k4 p0.
    EfficientAD's larger PDN (FM-l) adds Conv 2c->2c k1 + ReLU after the
    second pooling and ReLU + Conv 384->384 k1 at the end.
    """
    seq = [
        nn.Conv2d(3, c, 4, 1, 3),
        nn.ReLU(),
        nn.AvgPool2d(2, 2, 1),
        nn.Conv2d(c, 2 * c, 4, 1, 3),
        nn.ReLU(),
        nn.AvgPool2d(2, 2, 1),
    ]
    if large:
        seq += [nn.Conv2d(2 * c, 2 * c, 1, 1, 0), nn.ReLU()]
    seq += [nn.Conv2d(2 * c, 2 * c, 3, 1, 1), nn.ReLU(), nn.Conv2d(2 * c, out, 4, 1, 0)]
    if large:
        seq += [nn.ReLU(), nn.Conv2d(out, out, 1, 1, 0)]
    return nn.Sequential(*seq)


@pytest.mark.parametrize(
    'size,c,name', [('large', 256, 'gfds_fm_large'), ('small', 128, 'gfds_fm_small')]
)
def test_pdn_loads_official_sequential(ckpt_dir, size, c, name):
    torch.manual_seed(0)
    ref = reference_student(c, size == 'large').eval()
    torch.save(ref.state_dict(), ckpt_dir / ck.CHECKPOINTS[name]['filename'])
    model = MODELS.build(
        dict(
            type='PDNStudent',
            size=size,
            init_cfg=dict(type='Pretrained', checkpoint=name),
        )
    )
    _quiet_init(model).eval()
    assert model.out_channels == 384 and model.out_stride == 4
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        y_ref, y = ref(x), model(x)[0]
    assert y.shape == (1, 384, 64, 64)
    assert torch.allclose(y, y_ref, atol=1e-6, rtol=0)


def test_pdn_resnet_teacher_width():
    model = MODELS.build(
        dict(type='PDNStudent', size='small', out_channels=512, frozen=True)
    )
    with torch.no_grad():
        y = model(torch.randn(1, 3, 64, 64))[0]
    assert y.shape == (1, 512, 16, 16)
    assert not model.training and not any(p.requires_grad for p in model.parameters())


# --------------------------------------------------------------------- ViT
def reference_dino_interpolate(pos_embed, patch_size, x, w, h):
    """DINO's VisionTransformer.interpolate_pos_encoding, transcribed."""
    npatch = x.shape[1] - 1
    N = pos_embed.shape[1] - 1
    if npatch == N and w == h:
        return pos_embed
    class_pos_embed = pos_embed[:, 0]
    patch_pos_embed = pos_embed[:, 1:]
    dim = x.shape[-1]
    w0 = w // patch_size
    h0 = h // patch_size
    w0, h0 = w0 + 0.1, h0 + 0.1
    patch_pos_embed = F.interpolate(
        patch_pos_embed.reshape(1, int(math.sqrt(N)), int(math.sqrt(N)), dim).permute(
            0, 3, 1, 2
        ),
        scale_factor=(w0 / math.sqrt(N), h0 / math.sqrt(N)),
        mode='bicubic',
    )
    assert int(w0) == patch_pos_embed.shape[-2]
    assert int(h0) == patch_pos_embed.shape[-1]
    patch_pos_embed = patch_pos_embed.permute(0, 2, 3, 1).view(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), patch_pos_embed), dim=1)


def reference_dino_features(vit, x):
    """DINO prepare_tokens + get_intermediate_layers(n=1), patch tokens."""
    B, nc, w, h = x.shape
    proj = vit.patch_embed.proj
    t = proj(x).flatten(2).transpose(1, 2)
    t = torch.cat((vit.cls_token.expand(B, -1, -1), t), dim=1)
    t = t + reference_dino_interpolate(vit.pos_embed, proj.kernel_size[0], t, w, h)
    for blk in vit.blocks:
        t = blk(t)
    t = vit.norm(t)[:, 1:]
    p = proj.kernel_size[0]
    return t.transpose(1, 2).reshape(B, -1, w // p, h // p)


def test_dino_vits8_512_matches_reference():
    pytest.importorskip('timm')
    torch.manual_seed(0)
    # One block instead of twelve keeps the test fast; the token path
    # (patch embed, DINO pos-embed resampling, norm, reshape) is complete.
    model = MODELS.build(
        dict(type='DINOViT', arch='S/8', input_size=512, timm_kwargs=dict(depth=1))
    )
    assert model.out_channels == 384 and model.out_stride == 8
    assert not model.training
    x = torch.randn(1, 3, 512, 512)
    with torch.no_grad():
        y = model(x)[0]
        y_ref = reference_dino_features(model.vit, x)
    assert y.shape == (1, 384, 64, 64)
    assert torch.allclose(y, y_ref, atol=1e-5, rtol=1e-5)


def test_dino_interp_differs_from_size_based():
    from timm.layers import resample_abs_pos_embed

    from fdseg.models.backbones.vit import dino_interpolate_pos_embed

    torch.manual_seed(0)
    pe = torch.randn(1, 1 + 28 * 28, 8)
    ours = dino_interpolate_pos_embed(pe, 64, 64)
    tok = torch.zeros(1, 1 + 64 * 64, 8)
    ref = reference_dino_interpolate(pe, 8, tok, 512, 512)
    assert torch.equal(ours, ref)
    timm_pe = resample_abs_pos_embed(pe, (64, 64), num_prefix_tokens=1)
    assert not torch.allclose(ours, timm_pe, atol=1e-4)
    # Non-square: rows follow the image height.
    ours = dino_interpolate_pos_embed(pe, 40, 24)
    ref = reference_dino_interpolate(pe, 8, torch.zeros(1, 1 + 960, 8), 320, 192)
    assert torch.equal(ours, ref)


def test_dino_pretrained_via_resolver(ckpt_dir):
    pytest.importorskip('timm')
    torch.manual_seed(0)
    src = MODELS.build(dict(type='DINOViT', arch='S/16', timm_kwargs=dict(depth=1)))
    torch.save(
        src.vit.state_dict(), ckpt_dir / ck.CHECKPOINTS['dino_vits16']['filename']
    )
    dst = MODELS.build(
        dict(
            type='DINOViT',
            arch='S/16',
            timm_kwargs=dict(depth=1),
            init_cfg=dict(type='Pretrained', checkpoint='dino_vits16'),
        )
    )
    _quiet_init(dst)
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        assert torch.equal(src(x)[0], dst(x)[0])
        assert dst(x)[0].shape == (1, 384, 6, 8)
        # input_size resizes first (the GFDS teacher runs DINO at 512).
        dst.input_size = (128, 128)
        assert dst(x)[0].shape == (1, 384, 8, 8)


def test_dinov2_shapes_and_mask_token(ckpt_dir):
    pytest.importorskip('timm')
    torch.manual_seed(0)
    src = MODELS.build(dict(type='DINOv2ViT', arch='S/14', timm_kwargs=dict(depth=1)))
    assert src.vit.pos_embed.shape == (1, 1 + 37 * 37, 384)
    sd = dict(src.vit.state_dict())
    sd['mask_token'] = torch.zeros(1, 384)  # present in official files
    torch.save(sd, ckpt_dir / ck.CHECKPOINTS['dinov2_vits14']['filename'])
    dst = MODELS.build(
        dict(
            type='DINOv2ViT',
            arch='S/14',
            input_size=266,
            timm_kwargs=dict(depth=1),
            init_cfg=dict(type='Pretrained', checkpoint='dinov2_vits14'),
        )
    )
    _quiet_init(dst)
    x = torch.randn(1, 3, 256, 256)
    with torch.no_grad():
        y = dst(x)[0]
        y_src = src(F.interpolate(x, size=266, mode='bilinear', align_corners=False))[0]
    assert y.shape == (1, 384, 19, 19)
    assert torch.equal(y, y_src)


# ------------------------------------------------------------------ ResNet
@pytest.mark.parametrize(
    'arch,c2,c3', [('resnet18', 128, 256), ('resnet50', 512, 1024)]
)
def test_resnet_layers(arch, c2, c3):
    model = MODELS.build(
        dict(type='ResNetLayer', arch=arch, out_layer=('layer2', 'layer3'))
    )
    assert model.out_channels == (c2, c3)
    assert model.out_stride == (8, 16)
    assert not hasattr(model, 'layer4') and not hasattr(model, 'fc')
    with torch.no_grad():
        l2, l3 = model(torch.randn(1, 3, 64, 64))
    assert l2.shape == (1, c2, 8, 8) and l3.shape == (1, c3, 4, 4)
    single = MODELS.build(dict(type='ResNetLayer', arch=arch, out_layer='layer2'))
    assert single.out_channels == c2 and single.out_stride == 8
    assert not hasattr(single, 'layer3')


def test_resnet_pretrained_and_frozen_bn(ckpt_dir):
    tv = pytest.importorskip('torchvision')
    torch.manual_seed(0)
    ref = tv.models.resnet18(weights=None).eval()
    torch.save(
        ref.state_dict(), ckpt_dir / ck.CHECKPOINTS['torchvision_resnet18']['filename']
    )
    model = MODELS.build(
        dict(
            type='ResNetLayer',
            arch='resnet18',
            out_layer='layer3',
            frozen=False,
            norm_eval=True,
            init_cfg=dict(type='Pretrained', checkpoint='torchvision_resnet18'),
        )
    )
    # resnet18's sha256 prefix check must fail on this random file.
    with pytest.raises(ck.ChecksumMismatchError):
        model.init_weights()
    # An explicit path is used as is (no registry, no checksum).
    path = ckpt_dir / ck.CHECKPOINTS['torchvision_resnet18']['filename']
    model.init_cfg = dict(type='Pretrained', checkpoint=str(path))
    model.init_weights()
    model.train()
    assert model.training
    assert all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    assert all(p.requires_grad for p in model.parameters())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        r = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
        r = ref.layer3(ref.layer2(ref.layer1(r)))
        assert torch.allclose(model(x)[0], r, atol=1e-6)


def test_distilled_student_export_roundtrip(tmp_path):
    """A FeatureDistiller-style checkpoint exports to official PDN keys."""
    import subprocess
    import sys
    from collections import OrderedDict

    from fdseg.models.backbones import PDNStudent

    src = PDNStudent(size='small')
    state = OrderedDict(
        ('student.pdn.' + k, v) for k, v in src.pdn.state_dict().items()
    )
    state['teacher.w'] = torch.zeros(1)
    ckpt = dict(state_dict=state, message_hub=dict(x=object.__class__))
    torch.save(ckpt, tmp_path / 'iter_1.pth')
    tool = osp.join(
        REPO,
        'tools',
        'model_converters',
        'distilled_student_to_pdn.py',
    )
    subprocess.run(
        [sys.executable, tool, str(tmp_path / 'iter_1.pth'), str(tmp_path / 'out.pth')],
        check=True,
    )
    out = torch.load(tmp_path / 'out.pth', weights_only=True)
    assert sorted(out) == sorted(src.pdn.state_dict())
    dst = PDNStudent(
        size='small',
        init_cfg=dict(type='Pretrained', checkpoint=str(tmp_path / 'out.pth')),
    )
    dst.init_weights()
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(dst(x)[0], src(x)[0])
