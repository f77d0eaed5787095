"""GFDS distilled student: the EfficientAD patch description network (PDN).

The paper's feature extractor E(.) (Sec. 5.1.1, 6.1.2, Table 3) is a shallow
CNN distilled from DINO ViT-S/8 (input 512, last-block patch tokens) on
ImageNet; the student sees 256x256 images and outputs a 64x64 map, aligned
with the teacher's 512/8 = 64 token grid.

* ``size='small'`` (FM-s): exactly Table 3 with ``c = 128``.
* ``size='large'`` (FM-l): ``c = 256`` plus the extra layers of EfficientAD's
  larger PDN, as in the official ``get_pdn_large`` (liutongkun/GFDS,
  MatchingNet_PatchBased.py): a 1x1 conv + ReLU after the second pooling and
  a ReLU + 1x1 conv after the last 4x4 conv.

The layers live in an inner ``nn.Sequential`` named ``pdn`` with the official
ordering, so the released ``model_large.pth`` / ``model_small.pth`` (state
dicts of those Sequentials, keys ``'0.weight'``, ``'3.weight'``, ...) load
into ``self.pdn`` one-to-one, no conversion needed.
"""

from typing import Dict, List, Optional, Tuple, Union

from mmengine.model import BaseModule
from torch import Tensor, nn

from fdseg.registry import MODELS
from fdseg.utils.checkpoints import ResolverPretrainedMixin

# Base width c per size (paper Table 3: 256 for FM-l, 128 for FM-s).
_BASE_CHANNELS = {'large': 256, 'small': 128}


def _build_pdn(size: str, c: int, out_channels: int, padding: bool) -> nn.Sequential:
    """Layer list in the official index order (state-dict keys depend on it).

    Returns:
        nn.Sequential: ``[B,3,H,W] -> [B,out_channels,H/4,W/4]`` for
        ``padding=True`` and H, W multiples of 4.
    """
    p = 1 if padding else 0
    layers: List[nn.Module] = [
        nn.Conv2d(3, c, kernel_size=4, padding=3 * p),
        nn.ReLU(inplace=True),
        nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p),
        nn.Conv2d(c, 2 * c, kernel_size=4, padding=3 * p),
        nn.ReLU(inplace=True),
        nn.AvgPool2d(kernel_size=2, stride=2, padding=1 * p),
    ]
    if size == 'large':
        layers += [nn.Conv2d(2 * c, 2 * c, kernel_size=1), nn.ReLU(inplace=True)]
    layers += [
        nn.Conv2d(2 * c, 2 * c, kernel_size=3, padding=1 * p),
        nn.ReLU(inplace=True),
        # Not padded even with padding=True: it trims 67 -> 64 (Table 3).
        nn.Conv2d(2 * c, out_channels, kernel_size=4),
    ]
    if size == 'large':
        layers += [
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=1),
        ]
    return nn.Sequential(*layers)


@MODELS.register_module()
class PDNStudent(ResolverPretrainedMixin, BaseModule):
    """GFDS FM-l / FM-s student network (EfficientAD PDN).

    Args:
        size (str): ``'large'`` (FM-l, c=256, extra 1x1 layers) or
            ``'small'`` (FM-s, c=128). Defaults to ``'large'``.
        out_channels (int): Output channels: 384 to mimic DINO ViT-S, 512 to
            mimic a ResNet layer2 teacher (paper Sec. 7.1.2). Defaults to 384.
        padding (bool): Official ``padding=True`` keeps a 256 input at a
            64x64 output; ``False`` is EfficientAD's unpadded variant
            (256 -> 56). Defaults to True.
        base_channels (int, optional): Override of ``c``; the released
            weights need the default. Defaults to None.
        frozen (bool): Freeze the parameters and keep the module in eval
            mode (use as a fixed extractor). Defaults to False.
        init_cfg (dict | list[dict], optional): e.g.
            ``dict(type='Pretrained', checkpoint='gfds_fm_large')``; the
            checkpoint goes through :func:`fdseg.utils.checkpoints.
            resolve_checkpoint` and is loaded with ``weights_only=True``.

    Attributes:
        out_channels (int): Channels of the output map.
        out_stride (int): Nominal output stride (4).
    """

    def __init__(
        self,
        size: str = 'large',
        out_channels: int = 384,
        padding: bool = True,
        base_channels: Optional[int] = None,
        frozen: bool = False,
        init_cfg: Union[dict, List[dict], None] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        if size not in _BASE_CHANNELS:
            raise ValueError(f"size must be 'large' or 'small', got {size!r}")
        self.size = size
        self.base_channels = base_channels or _BASE_CHANNELS[size]
        self.out_channels = out_channels
        self.out_stride = 4
        self.padding = padding
        self.frozen = frozen
        self.pdn = _build_pdn(size, self.base_channels, out_channels, padding)
        if frozen:
            self._freeze()

    def _freeze(self) -> None:
        self.eval()
        for p in self.parameters():
            p.requires_grad = False

    def train(self, mode: bool = True) -> 'PDNStudent':
        """Set the mode; a frozen student always stays in eval mode."""
        super().train(mode)
        if self.frozen:
            super().train(False)  # a frozen extractor never trains
        return self

    def load_pretrained_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Load an official Sequential state dict (or one of this class).

        Args:
            state_dict (dict[str, Tensor]): Keys ``'0.weight'``, ... (official
                file) or ``'pdn.0.weight'``, ... (saved from this module).
        """
        if state_dict and all(k.startswith('pdn.') for k in state_dict):
            state_dict = {k[4:]: v for k, v in state_dict.items()}
        self.pdn.load_state_dict(state_dict, strict=True)

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Extract the dense feature map.

        Args:
            x (Tensor): ImageNet-normalised images ``[B, 3, H, W]``
                (the paper uses 256x256).

        Returns:
            tuple[Tensor]: One level, ``[B, out_channels, H/4, W/4]``
            (``[B, 384, 64, 64]`` for a 256x256 input with ``padding=True``).
        """
        return (self.pdn(x),)


__all__ = ['PDNStudent']
