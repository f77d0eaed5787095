"""Deep-stem ("v2", PSPNet-style) ResNet used by PFENet and SSP.

The stem is three 3x3 convolutions (64, 64, 128 channels; the first with
stride 2) followed by a 3x3 max pool, so ``layer1`` receives 128 channels
(torchvision's ResNet has one 7x7 convolution and 64 channels). Layers 3
and 4 are dilated instead of strided so that they keep output stride 8, as
both official codes do:

- PFENet (``dvlab-research/PFENet`` ``model/PFENet.py``) sets ``dilation``
  2 / 4 on *every* block's 3x3 convolution of layer3 / layer4
  (``contract_dilation=False``).
- SSP (``fanq15/SSP`` ``model/resnet.py``) uses torchvision's
  ``replace_stride_with_dilation``: the first block of a dilated layer keeps
  the previous dilation (``contract_dilation=True``), and drops the ReLU
  after the last block of layer3 (``last_relu=False``).

State-dict keys follow PFENet's ``resnet50_v2.pth`` (``conv1``, ``bn1``,
``conv2``, ``bn2``, ``conv3``, ``bn3``, ``layerN.*``). SSP's ``resnet50.pth``
names the stem as one ``nn.Sequential`` (``conv1.0``, ``conv1.1``,
``conv1.3``, ``conv1.4``, ``conv1.6`` and ``bn1`` for the third BN); it is
recognised and renamed on load. Both load strictly apart from the layers
this backbone does not build (``layer4`` when ``num_stages=3``) and ``fc``.
"""

from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from fdseg.registry import MODELS
from fdseg.utils.checkpoints import ResolverPretrainedMixin

_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}

# SSP's nn.Sequential stem -> PFENet's flat stem names.
_SSP_STEM = {
    'conv1.0.': 'conv1.',
    'conv1.1.': 'bn1.',
    'conv1.3.': 'conv2.',
    'conv1.4.': 'bn2.',
    'conv1.6.': 'conv3.',
    'bn1.': 'bn3.',
}


@MODELS.register_module()
class DeepStemBottleneck(nn.Module):
    """ResNet bottleneck (stride and dilation on the 3x3 convolution).

    Args:
        inplanes (int): Input channels.
        planes (int): Width; the output has ``4 * planes`` channels.
        stride (int): Of the 3x3 convolution (and the shortcut).
        dilation (int): Of the 3x3 convolution (padding = dilation).
        downsample (nn.Module, optional): Shortcut projection.
        last_relu (bool): Apply the ReLU after the residual sum.
    """

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        dilation: int = 1,
        downsample: Optional[nn.Module] = None,
        last_relu: bool = True,
    ):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride, dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.last_relu = last_relu

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C_in, H, W]`` -> ``[B, 4 * planes, H / stride, W / stride]``."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out)) + identity
        return self.relu(out) if self.last_relu else out


@MODELS.register_module()
class ResNetDeepStem(ResolverPretrainedMixin, BaseModule):
    """Deep-stem dilated ResNet (PFENet / SSP backbone).

    Stages are numbered as in mmseg: ``-1``/``0`` is the stem, ``0..3`` in
    ``out_indices`` are ``layer1..layer4``.

    Args:
        depth (int): 50 (default), 101 or 152.
        num_stages (int): 4 (PFENet: layer1..layer4) or 3 (SSP: up to
            layer3; layer4 is not built).
        strides (Sequence[int]): Stride of each layer; ``(1, 2, 1, 1)``
            keeps layer3 / layer4 at output stride 8.
        dilations (Sequence[int]): Dilation of each layer, ``(1, 1, 2, 4)``.
        contract_dilation (bool): The first block of a dilated layer uses
            the previous layer's dilation (SSP / torchvision); False dilates
            every block (PFENet).
        last_relu (bool): ReLU after the last block of the last stage;
            False for SSP's metric-learning features.
        out_indices (Sequence[int]): Layers returned, ``(1, 2, 3)`` =
            layer2, layer3, layer4.
        frozen_stages (int): Stages whose parameters do not train: ``-1``
            none, ``0`` the stem, ``k`` the stem and layer1..layer k
            (PFENet: 4, all; SSP: 1, stem and layer1). Frozen stages stay in
            eval mode only when ``norm_eval`` says so.
        norm_eval (bool): Keep every BatchNorm in eval mode (running stats
            used and not updated) while training. SSP: True. PFENet's
            official code leaves the frozen backbone in train mode (batch
            statistics, running stats updated): False.
        norm_requires_grad (bool): BatchNorm affine parameters train (in
            the stages that are not frozen). SSP freezes them: False.
        base_channels (int): Stem width ``c`` (convs ``c, c, 2c``) and
            layer1 planes; 64 for ResNet-50 (smaller only for tests).
        stage_blocks (Sequence[int], optional): Blocks per layer; default
            from ``depth`` (3, 4, 6, 3).
        init_cfg (dict, optional): ``dict(type='Pretrained',
            checkpoint='pfenet_resnet50_v2')`` (or ``'ssp_resnet50'``),
            resolved offline.

    Attributes:
        out_channels (tuple[int]): Channels of the outputs.
        out_stride (tuple[int]): Strides of the outputs.
    """

    def __init__(
        self,
        depth: int = 50,
        num_stages: int = 4,
        strides: Sequence[int] = (1, 2, 1, 1),
        dilations: Sequence[int] = (1, 1, 2, 4),
        contract_dilation: bool = False,
        last_relu: bool = True,
        out_indices: Sequence[int] = (1, 2, 3),
        frozen_stages: int = -1,
        norm_eval: bool = True,
        norm_requires_grad: bool = True,
        base_channels: int = 64,
        stage_blocks: Optional[Sequence[int]] = None,
        init_cfg: Union[dict, List[dict], None] = None,
    ):
        super().__init__(init_cfg=init_cfg)
        if depth not in _DEPTHS:
            raise KeyError(f'depth must be one of {sorted(_DEPTHS)}, got {depth}')
        if num_stages not in (1, 2, 3, 4):
            raise ValueError(f'num_stages must be 1..4, got {num_stages}')
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError('strides and dilations need one entry per stage')
        bad = [i for i in out_indices if not 0 <= i < num_stages]
        if bad or not out_indices:
            raise ValueError(
                f'out_indices must be in 0..{num_stages - 1}, got {out_indices}'
            )
        self.depth = depth
        self.num_stages = num_stages
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        c = base_channels
        blocks_per_stage = tuple(stage_blocks or _DEPTHS[depth])
        self.conv1 = nn.Conv2d(3, c, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(2 * c)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)

        inplanes, prev_dil, stride_total = 2 * c, 1, 4
        chans, out_strides = [], []
        for i in range(num_stages):
            planes = c * 2**i
            stride, dil = strides[i], dilations[i]
            first_dil = prev_dil if contract_dilation else dil
            down = None
            if stride != 1 or inplanes != planes * 4:
                down = nn.Sequential(
                    nn.Conv2d(inplanes, planes * 4, 1, stride, bias=False),
                    nn.BatchNorm2d(planes * 4),
                )
            n = blocks_per_stage[i]
            blocks = [DeepStemBottleneck(inplanes, planes, stride, first_dil, down)]
            blocks += [
                DeepStemBottleneck(planes * 4, planes, 1, dil) for _ in range(1, n)
            ]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            inplanes, prev_dil = planes * 4, dil
            stride_total *= stride
            chans.append(planes * 4)
            out_strides.append(stride_total)
        getattr(self, f'layer{num_stages}')[-1].last_relu = last_relu
        self.out_channels = tuple(chans[i] for i in self.out_indices)
        self.out_stride = tuple(out_strides[i] for i in self.out_indices)

        if not norm_requires_grad:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.requires_grad_(False)
        for i in range(-1, frozen_stages + 1):
            for m in self._stage_modules(i):
                m.requires_grad_(False)
        self.train()

    def _stage_modules(self, i: int) -> List[nn.Module]:
        if i <= 0:
            return [self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3]
        if i <= self.num_stages:
            return [getattr(self, f'layer{i}')]
        return []

    def train(self, mode: bool = True) -> 'ResNetDeepStem':
        """Set the mode; with ``norm_eval`` every BatchNorm stays in eval."""
        super().train(mode)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def load_pretrained_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Load PFENet's ``resnet50_v2.pth`` or SSP's ``resnet50.pth``.

        Keys of layers not built here (``layer4`` with ``num_stages=3``) and
        ``fc`` are dropped; everything else must match exactly.

        Args:
            state_dict (dict[str, Tensor]): Either official key layout.
        """
        if any(k.startswith('conv1.0.') for k in state_dict):
            renamed = {}
            for k, v in state_dict.items():
                for old, new in _SSP_STEM.items():
                    if k.startswith(old):
                        k = new + k[len(old) :]
                        break
                renamed[k] = v
            state_dict = renamed
        dropped = tuple(f'layer{i}.' for i in range(self.num_stages + 1, 5))
        dropped += ('fc.',)
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(dropped)}
        self.load_state_dict(state_dict, strict=True)

    def stem(self, x: Tensor) -> Tensor:
        """``[B, 3, H, W]`` -> ``[B, 128, H/4, W/4]`` (PFENet's ``layer0``)."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.maxpool(x)

    def forward_stage(self, x: Tensor, index: int) -> Tensor:
        """Run one layer: ``index`` 0..3 is layer1..layer4.

        Heads that feed a layer a modified input use this (PFENet computes
        the support's layer4 from the masked layer3).

        Args:
            x (Tensor): The previous layer's output ``[B, C, h, w]``.
            index (int): Layer index (mmseg numbering).
        """
        return getattr(self, f'layer{index + 1}')(x)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """``[B, 3, H, W]`` normalised images -> the ``out_indices`` levels.

        Returns:
            tuple[Tensor]: ``[B, C_i, H/s_i, W/s_i]`` per output index
            (layer2/3/4: 512/1024/2048 channels at stride 8).
        """
        x = self.stem(x)
        outs = []
        for i in range(self.num_stages):
            x = self.forward_stage(x, i)
            if i in self.out_indices:
                outs.append(x)
            if i >= max(self.out_indices):
                break
        return tuple(outs)


__all__ = ['ResNetDeepStem', 'DeepStemBottleneck']
