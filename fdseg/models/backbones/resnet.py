"""ImageNet-supervised torchvision ResNets cut at an intermediate layer.

GFDS Table 5 compares ``layer2`` / ``layer3`` features of ResNet-18,
ResNet-50, WideResNet-50-2 and WideResNet-101-2 (following PatchCore-style
anomaly detection) and uses ``layer2`` as an alternative distillation teacher
(Sec. 7.1.2). The torchvision model is built with ``weights=None`` (no
download); the stem and ``layer1..layerK`` are kept under their torchvision
names so the official ``download.pytorch.org`` state dicts load one-to-one,
and the unused later layers (and ``fc``) are dropped.
"""

from typing import Dict, List, Sequence, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from fdseg.registry import MODELS
from fdseg.utils.checkpoints import ResolverPretrainedMixin

_ARCHS = (
    'resnet18',
    'resnet34',
    'resnet50',
    'resnet101',
    'wide_resnet50_2',
    'wide_resnet101_2',
)
_LAYERS = ('layer1', 'layer2', 'layer3', 'layer4')
_STRIDES = {'layer1': 4, 'layer2': 8, 'layer3': 16, 'layer4': 32}


@MODELS.register_module()
class ResNetLayer(ResolverPretrainedMixin, BaseModule):
    """torchvision ResNet returning intermediate layer feature maps.

    Args:
        arch (str): ``'resnet18'``, ``'resnet50'`` (default),
            ``'wide_resnet50_2'``, ``'wide_resnet101_2'`` (also
            ``'resnet34'``, ``'resnet101'``).
        out_layer (str | Sequence[str]): ``'layer2'`` (default) or
            ``'layer3'`` (or ``'layer1'``/``'layer4'``), or a tuple of them,
            in which case ``forward`` returns a tuple in the same order.
        frozen (bool): Freeze all parameters and keep the module in eval
            mode. Defaults to True (a fixed feature extractor / teacher).
        norm_eval (bool): Keep BatchNorm layers in eval mode (running stats
            frozen) even when training. Defaults to True.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='torchvision_resnet50')``; resolved offline, loaded
            with ``weights_only=True``; weights of dropped layers ignored.

    Attributes:
        out_channels (int | tuple[int]): Channels per output (layer2/layer3:
            128/256 for ResNet-18, 512/1024 for the bottleneck models).
        out_stride (int | tuple[int]): Strides per output (8 / 16).
    """

    def __init__(
        self,
        arch: str = 'resnet50',
        out_layer: Union[str, Sequence[str]] = 'layer2',
        frozen: bool = True,
        norm_eval: bool = True,
        init_cfg: Union[dict, List[dict], None] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        import torchvision

        if arch not in _ARCHS:
            raise KeyError(f'arch must be one of {_ARCHS}, got {arch!r}')
        self.multi = not isinstance(out_layer, str)
        self.out_layers: Tuple[str, ...] = (
            tuple(out_layer) if self.multi else (out_layer,)
        )
        bad = [n for n in self.out_layers if n not in _LAYERS]
        if bad or not self.out_layers:
            raise ValueError(
                f'out_layer entries must be in {_LAYERS}, got {out_layer!r}'
            )
        self.arch = arch
        self.frozen = frozen
        self.norm_eval = norm_eval
        last = max(_LAYERS.index(n) for n in self.out_layers)
        self.kept_layers = _LAYERS[: last + 1]

        net = getattr(torchvision.models, arch)(weights=None)
        # Same attribute names as torchvision -> identical state-dict keys.
        self.conv1, self.bn1 = net.conv1, net.bn1
        self.relu, self.maxpool = net.relu, net.maxpool
        for name in self.kept_layers:
            self.add_module(name, getattr(net, name))
        del net  # later layers and fc are never used

        chans = {}
        for name in self.kept_layers:
            last_block = getattr(self, name)[-1]
            # BasicBlock ends in bn2, Bottleneck in bn3.
            bn = getattr(last_block, 'bn3', None) or last_block.bn2
            chans[name] = bn.num_features
        outs_c = tuple(chans[n] for n in self.out_layers)
        outs_s = tuple(_STRIDES[n] for n in self.out_layers)
        self.out_channels = outs_c if self.multi else outs_c[0]
        self.out_stride = outs_s if self.multi else outs_s[0]
        if frozen:
            for p in self.parameters():
                p.requires_grad = False
        self.train()

    def train(self, mode: bool = True) -> 'ResNetLayer':
        """Set the mode; frozen layers and (``norm_eval``) BatchNorms stay in eval."""
        super().train(mode and not self.frozen)
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def load_pretrained_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Load a torchvision ResNet state dict, ignoring dropped layers.

        Args:
            state_dict (dict[str, Tensor]): torchvision keys (``conv1.*``,
                ``bn1.*``, ``layerN.*``, ``fc.*``).
        """
        dropped = tuple(f'{n}.' for n in _LAYERS if n not in self.kept_layers)
        dropped += ('fc.',)
        state_dict = {k: v for k, v in state_dict.items() if not k.startswith(dropped)}
        self.load_state_dict(state_dict, strict=True)

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        """Run the stem and the kept layers.

        Args:
            x (Tensor): ImageNet-normalised images ``[B, 3, H, W]``.

        Returns:
            tuple[Tensor]: ``[B, C, H/s, W/s]`` per requested layer
            (``s`` = 8 for layer2, 16 for layer3), in ``out_layer`` order;
            one level for a single layer name.
        """
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        feats = {}
        for name in self.kept_layers:
            x = getattr(self, name)(x)
            feats[name] = x
        return tuple(feats[n] for n in self.out_layers)


__all__ = ['ResNetLayer']
