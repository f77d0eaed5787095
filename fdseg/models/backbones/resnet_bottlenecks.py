"""torchvision ResNet returning every bottleneck's output (HSNet / PATNet).

HSNet (Min et al., ICCV 2021) builds its hypercorrelation from one feature
per bottleneck block of ``layer2..layer4`` (4 + 6 + 3 = 13 for ResNet-50),
taken after the residual addition and *before* the block's final ReLU, as
the official ``extract_feat_res`` does. PATNet (Lei et al., ECCV 2022) uses
the same features. The network is the plain torchvision ResNet built with
``weights=None`` (nothing downloads); the ImageNet weights come through the
offline resolver (``torchvision_resnet50``) and load one-to-one.
"""

from typing import List, Sequence, Tuple, Union

import torch.nn.functional as F
from torch import Tensor

from fdseg.registry import MODELS

from .resnet import ResNetLayer

_BOTTLENECK_ARCHS = ('resnet50', 'resnet101', 'wide_resnet50_2', 'wide_resnet101_2')


@MODELS.register_module()
class ResNetBottlenecks(ResNetLayer):
    """Pre-ReLU outputs of every bottleneck block of the chosen layers.

    Args:
        arch (str): A bottleneck torchvision ResNet: ``'resnet50'``
            (default, HSNet/PATNet), ``'resnet101'``, ``'wide_resnet50_2'``,
            ``'wide_resnet101_2'``.
        layers (Sequence[str]): Layers whose blocks are returned, in order;
            ``('layer2', 'layer3', 'layer4')`` as the official code.
        frozen (bool): Freeze all parameters, keep eval mode (official).
        norm_eval (bool): BatchNorms in eval mode even when training.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='torchvision_resnet50')``.

    Attributes:
        out_channels (tuple[int]): Channels per returned feature
            (ResNet-50: 4 x 512, 6 x 1024, 3 x 2048).
        out_stride (tuple[int]): Stride per feature (8 / 16 / 32).
        stage_sizes (tuple[int]): Blocks per requested layer (ResNet-50:
            ``(4, 6, 3)``); the heads group the features by it.
    """

    def __init__(
        self,
        arch: str = 'resnet50',
        layers: Sequence[str] = ('layer2', 'layer3', 'layer4'),
        frozen: bool = True,
        norm_eval: bool = True,
        init_cfg: Union[dict, List[dict], None] = None,
    ) -> None:
        if arch not in _BOTTLENECK_ARCHS:
            raise KeyError(f'arch must be one of {_BOTTLENECK_ARCHS}, got {arch!r}')
        super().__init__(
            arch=arch,
            out_layer=tuple(layers),
            frozen=frozen,
            norm_eval=norm_eval,
            init_cfg=init_cfg,
        )
        chans, strides, sizes = [], [], []
        for name, stride in zip(self.out_layers, self.out_stride):
            blocks = getattr(self, name)
            sizes.append(len(blocks))
            for block in blocks:
                chans.append(block.bn3.num_features)
                strides.append(stride)
        self.out_channels = tuple(chans)
        self.out_stride = tuple(strides)
        self.stage_sizes = tuple(sizes)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the stem and the kept layers block by block.

        Args:
            x (Tensor): ImageNet-normalised images ``[B, 3, H, W]``.

        Returns:
            tuple[Tensor]: One ``[B, C_i, H/s_i, W/s_i]`` per bottleneck of
            the requested layers (13 for ResNet-50 layer2..4), each
            ``bn3(conv3(...)) + identity`` before the block's ReLU.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = []
        for name in self.kept_layers:
            keep = name in self.out_layers
            for block in getattr(self, name):
                identity = x if block.downsample is None else block.downsample(x)
                out = block.relu(block.bn1(block.conv1(x)))
                out = block.relu(block.bn2(block.conv2(out)))
                # not in place: the pre-ReLU sum is the feature.
                pre = block.bn3(block.conv3(out)) + identity
                if keep:
                    feats.append(pre)
                x = F.relu(pre)
        return tuple(feats)


__all__ = ['ResNetBottlenecks']
