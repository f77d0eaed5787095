"""Deep-stem ResNet-50 vs transcriptions of the PFENet and SSP backbones.

``OfficialPFENetResNet`` transcribes ``dvlab-research/PFENet``
``model/resnet.py`` (flat deep stem, torchvision-style bottleneck) plus the
dilation loop of ``model/PFENet.py`` (every layer3 / layer4 3x3 conv:
dilation 2 / 4, stride 1; shortcut stride 1). ``OfficialSSPResNet``
transcribes ``fanq15/SSP`` ``model/resnet.py``: ``nn.Sequential`` stem,
``replace_stride_with_dilation=[False, True, True]`` (first block keeps the
previous dilation) and no ReLU after layer3's last block. Random weights are
saved in each official key layout and loaded by the backbone strictly.
Numerics at a tiny width (``c`` = 8, one block per layer) to fit the test
budget; the full ResNet-50 key sets and shapes are compared on the meta
device.
"""

import warnings

import pytest
import torch
from torch import nn

from fdseg.registry import MODELS
from fdseg.utils import checkpoints as ck


class _Bottleneck(nn.Module):
    def __init__(self, inp, planes, stride=1, dilation=1, down=None, last_relu=True):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride, dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = down
        self.last_relu = last_relu

    def forward(self, x):
        res = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            res = self.downsample(x)
        out += res
        return self.relu(out) if self.last_relu else out


def _layer(inp, planes, n, stride, first_dil=1, dil=1, last_relu=True):
    down = None
    if stride != 1 or inp != planes * 4:
        down = nn.Sequential(
            nn.Conv2d(inp, planes * 4, 1, stride, bias=False),
            nn.BatchNorm2d(planes * 4),
        )
    blocks = [_Bottleneck(inp, planes, stride, first_dil, down)]
    for i in range(1, n):
        blocks.append(
            _Bottleneck(
                planes * 4, planes, 1, dil, last_relu=last_relu if i == n - 1 else True
            )
        )
    return nn.Sequential(*blocks)


class OfficialPFENetResNet(nn.Module):
    """PFENet's ResNet-50 (deep base) after PFENet.__init__'s dilation loop."""

    def __init__(self, c=64, blocks=(3, 4, 6, 3)):
        super().__init__()
        self.conv1 = nn.Conv2d(3, c, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * c)
        self.layer1 = _layer(2 * c, c, blocks[0], 1)
        self.layer2 = _layer(4 * c, 2 * c, blocks[1], 2)
        self.layer3 = _layer(8 * c, 4 * c, blocks[2], 2)
        self.layer4 = _layer(16 * c, 8 * c, blocks[3], 2)
        self.fc = nn.Linear(32 * c, 1000)
        for layer, d in ((self.layer3, 2), (self.layer4, 4)):
            for n, m in layer.named_modules():
                if 'conv2' in n:
                    m.dilation, m.padding, m.stride = (d, d), (d, d), (1, 1)
                elif 'downsample.0' in n:
                    m.stride = (1, 1)

    def layer0(self, x):
        r = torch.relu
        x = r(self.bn1(self.conv1(x)))
        x = r(self.bn2(self.conv2(x)))
        x = r(self.bn3(self.conv3(x)))
        return nn.functional.max_pool2d(x, 3, 2, 1)


class OfficialSSPResNet(nn.Module):
    """SSP's ResNet-50 (layer0..layer3)."""

    def __init__(self, c=64, blocks=(3, 4, 6)):
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, c, 3, 2, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 1, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(inplace=True),
            nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False),
        )
        self.bn1 = nn.BatchNorm2d(2 * c)
        self.layer1 = _layer(2 * c, c, blocks[0], 1)
        self.layer2 = _layer(4 * c, 2 * c, blocks[1], 2)
        self.layer3 = _layer(
            8 * c, 4 * c, blocks[2], 1, first_dil=1, dil=2, last_relu=False
        )

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.layer3(self.layer2(self.layer1(x)))


def randomise(model, seed):
    """Random weights and BN statistics (so eval-mode BN is not identity)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype != torch.float32:
                continue
            if name.endswith('running_var'):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith(('bn1.weight', 'bn2.weight', 'bn3.weight', '1.weight')):
                t.copy_(torch.rand(t.shape, generator=g) * 0.5 + 0.5)
            else:
                fan = t[0].numel() if t.dim() > 1 else 1
                t.copy_(torch.randn(t.shape, generator=g) / fan**0.5)
    return model.eval()


TINY = dict(base_channels=8, stage_blocks=(1, 1, 2, 1))
PFENET_BB = dict(type='ResNetDeepStem', frozen_stages=4, norm_eval=False)
SSP_BB = dict(
    type='ResNetDeepStem',
    num_stages=3,
    contract_dilation=True,
    last_relu=False,
    out_indices=(2,),
    frozen_stages=1,
    norm_eval=True,
    norm_requires_grad=False,
)


def load_backbone(cfg, ckpt_dir, name, monkeypatch):
    monkeypatch.setenv(ck.ENV_CHECKPOINT_DIR, str(ckpt_dir))
    bb = MODELS.build(dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=name)))
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # no published sha256
        bb.init_weights()
    return bb.eval()


@pytest.fixture(scope='module')
def pfenet_ref():
    torch.manual_seed(0)
    return randomise(OfficialPFENetResNet(8, (1, 1, 2, 1)), 1)


@pytest.mark.parametrize('which', ['pfenet', 'ssp'])
def test_full_size_keys_and_shapes_match_the_official_layout(which):
    """ResNet-50 at full width: same keys and shapes (meta device)."""
    with torch.device('meta'):
        if which == 'pfenet':
            ref = OfficialPFENetResNet().state_dict()
            ours = MODELS.build(PFENET_BB)
            drop = ('fc.',)
        else:
            ref = OfficialSSPResNet().state_dict()
            ours = MODELS.build(SSP_BB)
            drop = ()
    stem = {'conv1.0.': 'conv1.', 'conv1.1.': 'bn1.', 'conv1.3.': 'conv2.'}
    stem.update({'conv1.4.': 'bn2.', 'conv1.6.': 'conv3.', 'bn1.': 'bn3.'})

    def rename(k):
        if which == 'ssp':
            for a, b in stem.items():
                if k.startswith(a):
                    return b + k[len(a) :]
        return k

    ref = {rename(k): v.shape for k, v in ref.items() if not k.startswith(drop)}
    assert ref == {k: v.shape for k, v in ours.state_dict().items()}
    assert ours.out_channels == ((512, 1024, 2048) if which == 'pfenet' else (1024,))


def test_pfenet_resnet50_v2_loads_strictly(pfenet_ref, tmp_path, monkeypatch):
    name = 'pfenet_resnet50_v2'
    torch.save(pfenet_ref.state_dict(), tmp_path / ck.CHECKPOINTS[name]['filename'])
    bb = load_backbone(dict(PFENET_BB, **TINY), tmp_path, name, monkeypatch)
    x = torch.randn(2, 3, 33, 33)
    with torch.no_grad():
        f1 = pfenet_ref.layer1(pfenet_ref.layer0(x))
        f2 = pfenet_ref.layer2(f1)
        f3 = pfenet_ref.layer3(f2)
        f4 = pfenet_ref.layer4(f3)
        out = bb(x)
    assert bb.out_stride == (8, 8, 8) and f4.shape[-1] == 5
    for a, b in zip(out, (f2, f3, f4)):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)
    # Frozen: no parameter trains; norm_eval=False keeps BN in train mode.
    assert not any(p.requires_grad for p in bb.parameters())
    assert bb.train().bn1.training
    # A file missing a key, or with a stray one, is refused.
    sd = pfenet_ref.state_dict()
    sd.pop('layer4.0.bn3.running_mean')
    with pytest.raises(RuntimeError, match='running_mean'):
        bb.load_pretrained_state_dict(sd)


def test_ssp_resnet50_loads_strictly(tmp_path, monkeypatch):
    torch.manual_seed(0)
    ref = randomise(OfficialSSPResNet(8, (1, 1, 2)), 2)
    name = 'ssp_resnet50'
    torch.save(ref.state_dict(), tmp_path / ck.CHECKPOINTS[name]['filename'])
    bb = load_backbone(dict(SSP_BB, **TINY), tmp_path, name, monkeypatch)
    x = torch.randn(1, 3, 33, 33)
    with torch.no_grad():
        (out,) = bb(x)
        assert torch.allclose(out, ref(x), atol=1e-5, rtol=1e-5)
    assert (out < 0).any()  # no ReLU after layer3
    assert bb.layer3[0].conv2.dilation == (1, 1)
    assert bb.layer3[1].conv2.dilation == (2, 2)
    # Trainable: layer2-3 convolutions; frozen: stem, layer1, every BN.
    train = {n.split('.')[0] for n, p in bb.named_parameters() if p.requires_grad}
    assert train == {'layer2', 'layer3'}
    assert not any(
        p.requires_grad
        for m in bb.modules()
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
    )
    bb.train()
    assert bb.layer3.training and not bb.layer3[0].bn1.training  # norm_eval


def test_backbone_rejects_bad_arguments():
    with pytest.raises(KeyError, match='depth'):
        MODELS.build(dict(type='ResNetDeepStem', depth=34))
    with pytest.raises(ValueError, match='out_indices'):
        MODELS.build(dict(type='ResNetDeepStem', num_stages=3, out_indices=(3,)))
