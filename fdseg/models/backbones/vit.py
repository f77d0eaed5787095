"""DINO / DINOv2 ViT backbones returning dense patch-token maps.

Both are timm ``VisionTransformer`` instances built with ``pretrained=False``
(nothing is downloaded) at the checkpoints' native grid (224 for DINO, 518
for DINOv2), so the official state dicts load one-to-one: DINO's
``vision_transformer.py`` and DINOv2's ``DinoVisionTransformer`` use the
same parameter names as timm (``cls_token``, ``pos_embed``,
``patch_embed.proj.*``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,
mlp.fc2}``, DINOv2's ``blocks.N.ls{1,2}.gamma``, ``norm.*``); only DINOv2's
unused ``mask_token`` is dropped.

Output: the patch tokens of the last transformer block (``out_block=-1``)
after the final LayerNorm, class token removed, reshaped to
``[B, C, H/p, W/p]``. This is what DINO's ``get_intermediate_layers(x, n=1)``
returns (it applies ``self.norm`` to every returned block) and what
DINOv2's ``forward_features()['x_norm_patchtokens']`` /
``get_intermediate_layers(norm=True)`` return; the GFDS paper only says
"patch features from the last transformer block" (Sec. 6.1.2), and its
distillation code is not released, so ``final_norm`` is configurable.

Position embeddings (``pos_embed_interp``):

* ``'dino'`` (default for both): the official resampling of DINO's
  ``interpolate_pos_encoding`` and DINOv2's (hub defaults
  ``interpolate_offset=0.1``, ``interpolate_antialias=False``): bicubic,
  ``align_corners=False``, driven by ``scale_factor = (n + 0.1) / sqrt(N)``
  rather than an output size (PyTorch then uses the scale, not the size, to
  map coordinates, so this differs numerically from a size-based resize),
  computed in float32; skipped when the token count and the image are
  unchanged and square. ``interpolate_offset=0`` gives DINOv2's
  size-based variant.
* ``'timm'``: timm's ``dynamic_img_size`` resampling
  (``resample_abs_pos_embed``: size-based bicubic with antialias).
"""

import math
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from fdseg.models.utils.size import SizeType, to_hw
from fdseg.registry import MODELS
from fdseg.utils.checkpoints import ResolverPretrainedMixin

# arch -> (timm model name, native image size of the official checkpoint)
DINO_ARCHS = {
    'vit_small_patch16': ('vit_small_patch16_224.dino', 224),
    'vit_small_patch8': ('vit_small_patch8_224.dino', 224),
    'vit_base_patch16': ('vit_base_patch16_224.dino', 224),
    'vit_base_patch8': ('vit_base_patch8_224.dino', 224),
}
DINOV2_ARCHS = {
    'vit_small_patch14': ('vit_small_patch14_dinov2.lvd142m', 518),
    'vit_base_patch14': ('vit_base_patch14_dinov2.lvd142m', 518),
    'vit_large_patch14': ('vit_large_patch14_dinov2.lvd142m', 518),
}
_ALIASES = {
    'S/16': 'vit_small_patch16',
    'S/8': 'vit_small_patch8',
    'B/16': 'vit_base_patch16',
    'B/8': 'vit_base_patch8',
    'S/14': 'vit_small_patch14',
    'B/14': 'vit_base_patch14',
    'L/14': 'vit_large_patch14',
}


def dino_interpolate_pos_embed(
    pos_embed: Tensor,
    h0: int,
    w0: int,
    num_prefix_tokens: int = 1,
    offset: float = 0.1,
    antialias: bool = False,
) -> Tensor:
    """Resample a square absolute position embedding the DINO/DINOv2 way.

    Args:
        pos_embed (Tensor): ``[1, P + N, C]`` with ``P`` prefix (class)
            tokens and a square ``sqrt(N) x sqrt(N)`` patch grid.
        h0 (int): Target token rows (``H // patch``).
        w0 (int): Target token columns (``W // patch``).
        num_prefix_tokens (int): Leading tokens kept as is. Defaults to 1.
        offset (float): DINO's ``+0.1`` kludge: the resize is given as
            ``scale_factor=((h0 + offset) / M, (w0 + offset) / M)``; 0 uses
            ``size=(h0, w0)`` (DINOv2 with ``interpolate_offset=0``).
        antialias (bool): DINOv2's ``interpolate_antialias``. Defaults to
            False (the official default).

    Returns:
        Tensor: ``[1, P + h0 * w0, C]`` in the dtype of ``pos_embed``.
    """
    dtype = pos_embed.dtype
    pe = pos_embed.float()  # DINOv2 resamples in float32
    prefix, grid = pe[:, :num_prefix_tokens], pe[:, num_prefix_tokens:]
    n, dim = grid.shape[1], grid.shape[2]
    m = int(math.sqrt(n))
    if m * m != n:
        raise ValueError(f'pos_embed grid of {n} tokens is not square')
    grid = grid.reshape(1, m, m, dim).permute(0, 3, 1, 2)
    if offset:
        # Row scale first: DINO's "w" is x.shape[2], i.e. the image height.
        kwargs = dict(scale_factor=(float(h0 + offset) / m, float(w0 + offset) / m))
    else:
        kwargs = dict(size=(h0, w0))
    grid = F.interpolate(grid, mode='bicubic', antialias=antialias, **kwargs)
    if grid.shape[-2:] != (h0, w0):
        raise RuntimeError(f'resampled grid {tuple(grid.shape[-2:])} != {(h0, w0)}')
    grid = grid.permute(0, 2, 3, 1).reshape(1, h0 * w0, dim)
    return torch.cat((prefix, grid), dim=1).to(dtype)


class _TimmViTBase(ResolverPretrainedMixin, BaseModule):
    """Shared dense-token ViT wrapper (see module docstring)."""

    _ARCHS: Dict[str, Tuple[str, int]] = {}

    def __init__(
        self,
        arch: str,
        input_size: SizeType = None,
        out_block: int = -1,
        final_norm: bool = True,
        pos_embed_interp: str = 'dino',
        interpolate_offset: float = 0.1,
        interpolate_antialias: bool = False,
        resize_mode: str = 'bilinear',
        frozen: bool = True,
        timm_kwargs: Optional[dict] = None,
        init_cfg: Union[dict, List[dict], None] = None,
    ) -> None:
        super().__init__(init_cfg=init_cfg)
        import timm  # optional dependency (the 'vfm' extra)

        arch = _ALIASES.get(arch, arch)
        if arch not in self._ARCHS:
            aliases = sorted(k for k, v in _ALIASES.items() if v in self._ARCHS)
            raise KeyError(
                f'Unknown arch {arch!r} for {type(self).__name__}'
                f'; choose from {sorted(self._ARCHS)} or {aliases}'
            )
        if pos_embed_interp not in ('dino', 'timm'):
            raise ValueError("pos_embed_interp must be 'dino' or 'timm'")
        timm_name, native = self._ARCHS[arch]
        kwargs = dict(img_size=native, num_classes=0, dynamic_img_size=True)
        kwargs.update(timm_kwargs or {})
        # pretrained=False: timm must not reach for the network; weights
        # come from init_cfg through the offline resolver.
        self.vit = timm.create_model(timm_name, pretrained=False, **kwargs)
        self.arch = arch
        self.patch_size = self.vit.patch_embed.patch_size[0]
        self.out_channels = self.vit.embed_dim
        self.out_stride = self.patch_size
        self.input_size = to_hw(input_size)
        depth = len(self.vit.blocks)
        self.out_block = out_block % depth
        self.final_norm = final_norm
        self.pos_embed_interp = pos_embed_interp
        self.interpolate_offset = interpolate_offset
        self.interpolate_antialias = interpolate_antialias
        self.resize_mode = resize_mode
        self.frozen = frozen
        if frozen:
            self.eval()
            for p in self.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True) -> '_TimmViTBase':
        super().train(mode and not self.frozen)
        return self

    def load_pretrained_state_dict(self, state_dict: Dict[str, Tensor]) -> None:
        """Load an official DINO / DINOv2 (= timm-named) state dict.

        Args:
            state_dict (dict[str, Tensor]): Official backbone weights; a
                ``'vit.'`` prefix (saved from this module) is accepted.
        """
        if state_dict and all(k.startswith('vit.') for k in state_dict):
            state_dict = {k[4:]: v for k, v in state_dict.items()}
        # DINOv2 masked-modelling token / DINO classifier heads: unused here.
        state_dict = {
            k: v
            for k, v in state_dict.items()
            if k != 'mask_token' and not k.startswith('head.')
        }
        pe = state_dict.get('pos_embed')
        if pe is not None and pe.shape != self.vit.pos_embed.shape:
            raise ValueError(
                f'pos_embed {tuple(pe.shape)} does not match the '
                f'{self.arch} grid {tuple(self.vit.pos_embed.shape)}; is '
                'this the right checkpoint?'
            )
        self.vit.load_state_dict(state_dict, strict=True)

    def _tokens(self, x: Tensor) -> Tuple[Tensor, int, int]:
        """Patch embedding + class token + position embedding.

        Returns:
            tuple: tokens ``[B, P + h0*w0, C]``, ``h0``, ``w0``.
        """
        vit = self.vit
        H, W = x.shape[-2:]
        feat = vit.patch_embed(x)  # NHWC with dynamic_img_size
        h0, w0 = feat.shape[1], feat.shape[2]
        if self.pos_embed_interp == 'timm':
            return vit._pos_embed(feat), h0, w0
        tokens = feat.flatten(1, 2)
        prefix = [vit.cls_token.expand(x.shape[0], -1, -1)]
        if getattr(vit, 'reg_token', None) is not None:
            prefix.append(vit.reg_token.expand(x.shape[0], -1, -1))
        tokens = torch.cat(prefix + [tokens], dim=1)
        pos = vit.pos_embed
        n_pos = pos.shape[1] - vit.num_prefix_tokens
        # Official shortcut: same token count and a square image -> as is.
        if not (h0 * w0 == n_pos and H == W):
            pos = dino_interpolate_pos_embed(
                pos,
                h0,
                w0,
                num_prefix_tokens=vit.num_prefix_tokens,
                offset=self.interpolate_offset,
                antialias=self.interpolate_antialias,
            )
        return vit.pos_drop(tokens + pos), h0, w0

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """Dense patch features.

        Args:
            x (Tensor): ImageNet-normalised images ``[B, 3, H, W]``; resized
                to ``input_size`` first when one is set (e.g. 512 for the
                GFDS teacher). Sizes that are not multiples of the patch are
                floored, as the official patch convolution does.

        Returns:
            tuple[Tensor]: One level, ``[B, C, H'/p, W'/p]`` (``H', W'``
            after the optional resize), e.g. ``[B, 384, 64, 64]`` for ViT-S/8
            at 512.
        """
        if self.input_size is not None and tuple(x.shape[-2:]) != self.input_size:
            align = False if self.resize_mode in ('bilinear', 'bicubic') else None
            x = F.interpolate(
                x, size=self.input_size, mode=self.resize_mode, align_corners=align
            )
        vit = self.vit
        tokens, h0, w0 = self._tokens(x)
        tokens = vit.patch_drop(tokens)
        tokens = vit.norm_pre(tokens)
        for blk in vit.blocks[: self.out_block + 1]:
            tokens = blk(tokens)
        if self.final_norm:
            tokens = vit.norm(tokens)
        patches = tokens[:, vit.num_prefix_tokens :]
        return (patches.transpose(1, 2).reshape(x.shape[0], -1, h0, w0),)


@MODELS.register_module()
class DINOViT(_TimmViTBase):
    """DINO ViT (S/16, S/8, B/16, B/8) dense feature extractor.

    Args:
        arch (str): ``'vit_small_patch8'`` (default, the GFDS teacher),
            ``'vit_small_patch16'``, ``'vit_base_patch16'``,
            ``'vit_base_patch8'`` or the aliases ``'S/8'``, ``'S/16'``,
            ``'B/16'``, ``'B/8'``.
        input_size (int | tuple[int, int], optional): Resize inputs to this
            size inside ``forward`` (bilinear); None keeps the input size.
        out_block (int): Transformer block whose tokens are returned
            (``-1`` = last, as in the paper).
        final_norm (bool): Apply the final LayerNorm (as DINO's
            ``get_intermediate_layers``). Defaults to True.
        pos_embed_interp (str): ``'dino'`` (official, default) or ``'timm'``.
        interpolate_offset (float): Offset of the ``'dino'`` resampling.
        interpolate_antialias (bool): Antialias of the ``'dino'`` resampling.
        resize_mode (str): ``F.interpolate`` mode of the input resize.
        frozen (bool): Freeze parameters, stay in eval mode. Defaults to True.
        timm_kwargs (dict, optional): Extra ``timm.create_model`` kwargs.
        init_cfg (dict, optional): e.g. ``dict(type='Pretrained',
            checkpoint='dino_vits8')`` (resolved offline, weights_only).

    Attributes:
        out_channels (int): Embedding dim (384 ViT-S, 768 ViT-B).
        out_stride (int): Patch size.
    """

    _ARCHS = DINO_ARCHS

    def __init__(self, arch: str = 'vit_small_patch8', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)


@MODELS.register_module()
class DINOv2ViT(_TimmViTBase):
    """DINOv2 ViT (S/14, B/14, L/14) dense feature extractor.

    Same arguments as :class:`DINOViT`; ``arch`` is ``'vit_small_patch14'``
    (default), ``'vit_base_patch14'``, ``'vit_large_patch14'`` or
    ``'S/14'``, ``'B/14'``, ``'L/14'``. The model is built at the official
    518x518 grid (37x37 position embeddings, LayerScale blocks); the paper
    feeds 266x266 images (19x19 tokens, Sec. 7.1.1) and 896 for the DINOv2
    teacher (Sec. 7.1.2). The default ``'dino'`` resampling with offset 0.1
    and no antialias is what the official DINOv2 hub models do.
    """

    _ARCHS = DINOV2_ARCHS

    def __init__(self, arch: str = 'vit_small_patch14', **kwargs) -> None:
        super().__init__(arch=arch, **kwargs)


__all__ = ['DINOViT', 'DINOv2ViT', 'dino_interpolate_pos_embed']
