"""CPU inference algorithms for 2-D convolutions (Winograd, im2col GEMM).

On a CPU an fp32 convolution is bound by its multiply-adds: oneDNN's direct
convolutions already run the PDN near the core's peak, so what is left is to
do fewer of them. :class:`FastConv2d` is an ``nn.Conv2d`` (same parameters,
same state-dict keys) whose no-grad forward runs one of:

* ``'nchw'`` / ``'nhwc'``: the direct convolution in that memory format;
* ``'winograd'``: Winograd's minimal filtering F(m x m, r x r) (Lavin &
  Gray, 2016) for stride-1 convolutions: a 4x4 kernel costs 49 instead of
  256 multiplies per 4x4 output tile. All arithmetic stays fp32; the result
  differs from the direct one by float rounding only (about 1e-5 relative
  for m = 4, see ``tests/test_models/test_fast_conv.py``);
* ``'gemm'``: im2col followed by one matrix product, for convolutions with
  very few input channels (the 3-channel stem) that direct kernels
  vectorise badly.

With gradients enabled the forward is always the plain ``nn.Conv2d`` one,
so a converted model still trains. :func:`fdseg.deploy.optimize_for_cpu`
picks the fastest algorithm per layer by timing each on its real input.
"""

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fdseg.registry import MODELS

# Interpolation points of the Toom-Cook construction, in the usual order of
# increasing magnitude (small points keep the transforms well conditioned);
# the point at infinity is added by the construction.
_POINTS = (0.0, 1.0, -1.0, 2.0, -0.5, -2.0, 0.5, 3.0, -3.0)
ALGORITHMS = ('nchw', 'nhwc', 'winograd', 'gemm')


def _vandermonde(points: Tuple[float, ...], n: int) -> Tensor:
    """``[len(points) + 1, n]``: powers 0..n-1 of each point, then infinity."""
    rows = [[p**k for k in range(n)] for p in points]
    rows.append([0.0] * (n - 1) + [1.0])
    return torch.tensor(rows, dtype=torch.float64)


def winograd_matrices(m: int, r: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Transforms of Winograd's F(m, r): ``y = AT [(G g) * (BT d)]``.

    For a filter ``g`` (length r) and an input ``d`` (length a = m + r - 1),
    ``y[i] = sum_k g[k] d[i + k]`` (i < m, a correlation, as ``conv2d``).
    Built as the transpose of Toom-Cook polynomial multiplication at the
    points ``_POINTS[:a - 1]`` and infinity: with ``A_n`` the evaluation of an
    n-coefficient polynomial at those points, ``AT = A_m^T``, ``G = A_r``,
    ``BT = A_a^-T``. The 2-D transform applies each on both axes.

    Args:
        m (int): Output tile size.
        r (int): Kernel size.

    Returns:
        tuple[Tensor]: ``AT [m, a]``, ``G [a, r]``, ``BT [a, a]`` (float64).
    """
    a = m + r - 1
    if m < 1 or r < 2 or a - 1 > len(_POINTS):
        raise ValueError(f'unsupported Winograd size F({m}, {r})')
    pts = _POINTS[: a - 1]
    AT = _vandermonde(pts, m).T.contiguous()
    G = _vandermonde(pts, r)
    BT = torch.linalg.inv(_vandermonde(pts, a)).T.contiguous()
    return AT, G, BT


def winograd_supported(conv: nn.Conv2d, m: int) -> bool:
    """Whether ``conv`` can run as F(m x m, r x r)."""
    r = conv.kernel_size[0]
    return (
        type(conv.padding) is not str
        and conv.kernel_size[0] == conv.kernel_size[1]
        and r >= 2
        and m + r - 2 <= len(_POINTS)
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == 'zeros'
    )


def gemm_supported(conv: nn.Conv2d) -> bool:
    """Whether ``conv`` can run as im2col + GEMM."""
    return (
        type(conv.padding) is not str
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding_mode == 'zeros'
    )


def _nhwc_padded(x: Tensor, pad: Tuple[int, int], extra: Tuple[int, int]) -> Tensor:
    """``[N, C, H, W]`` -> zero-padded contiguous ``[N, H', W', C]``."""
    xn = x.permute(0, 2, 3, 1)
    if any(pad) or any(extra):
        (ph, pw), (eh, ew) = pad, extra
        return F.pad(xn, (0, 0, pw, pw + ew, ph, ph + eh))
    return xn.contiguous()


def winograd_conv2d(
    x: Tensor,
    packed: Tensor,
    k_in: Tensor,
    k_out: Tensor,
    m: int,
    r: int,
    padding: Tuple[int, int],
    bias: Optional[Tensor] = None,
) -> Tensor:
    """Stride-1 convolution by Winograd F(m x m, r x r).

    Each transform is a single matrix product over all tiles and channels
    (the Kronecker product of the 1-D transforms): the input tiles
    ``[a*a, T*C]`` are gathered with one strided copy, multiplied by
    ``kron(BT, BT)``, then by the packed filters per tile position (a batched
    GEMM ``[a*a] x [T, C] @ [C, O]``), then by ``kron(AT, AT)``.

    Args:
        x (Tensor): ``[N, C, H, W]``, any memory format.
        packed (Tensor): ``[a*a, C, O]``, from :func:`pack_winograd_weight`.
        k_in (Tensor): ``kron(BT, BT)``, ``[a*a, a*a]``.
        k_out (Tensor): ``kron(AT, AT)``, ``[m*m, a*a]``.
        m (int): Output tile size.
        r (int): Kernel size.
        padding (tuple[int]): Zero padding (h, w).
        bias (Tensor, optional): ``[O]``.

    Returns:
        Tensor: ``[N, O, Ho, Wo]`` (channels-last strides).
    """
    a = m + r - 1
    N, C, H, W = x.shape
    Ho, Wo = H + 2 * padding[0] - r + 1, W + 2 * padding[1] - r + 1
    th, tw = -(-Ho // m), -(-Wo // m)
    # pad the far edges up to whole tiles; the extra outputs are cropped
    xn = _nhwc_padded(
        x,
        padding,
        (th * m + r - 1 - H - 2 * padding[0], tw * m + r - 1 - W - 2 * padding[1]),
    )
    Hq, Wq = xn.shape[1:3]
    s_n, s_h, s_w = Hq * Wq * C, Wq * C, C
    tiles = xn.as_strided(
        (a, a, N, th, tw, C), (s_h, s_w, s_n, m * s_h, m * s_w, 1)
    ).reshape(a * a, -1)
    V = torch.mm(k_in, tiles).view(a * a, N * th * tw, C)
    M = torch.bmm(V, packed)  # [a*a, T, O]
    out_c = packed.shape[-1]
    Y = torch.mm(k_out, M.view(a * a, -1)).view(m, m, N, th, tw, out_c)
    Y = Y.permute(2, 3, 0, 4, 1, 5).reshape(N, th * m, tw * m, out_c)[:, :Ho, :Wo]
    Y = Y + bias if bias is not None else Y.contiguous()
    return Y.permute(0, 3, 1, 2)


def pack_winograd_weight(weight: Tensor, m: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Filters and transforms for :func:`winograd_conv2d`.

    The filter transform ``G g G^T`` is computed in float64, then cast.

    Args:
        weight (Tensor): ``[O, C, r, r]``.
        m (int): Output tile size.

    Returns:
        tuple[Tensor]: ``packed [a*a, C, O]``, ``k_in [a*a, a*a]``,
        ``k_out [m*m, a*a]`` in ``weight``'s dtype and device.
    """
    out_c, C, r, _ = weight.shape
    AT, G, BT = winograd_matrices(m, r)
    a = m + r - 1
    w = weight.detach().to('cpu', torch.float64)
    packed = torch.einsum('pi,ocij,qj->pqco', G, w, G).reshape(a * a, C, out_c)
    to = dict(dtype=weight.dtype, device=weight.device)
    return (
        packed.to(**to).contiguous(),
        torch.kron(BT, BT).to(**to),
        torch.kron(AT, AT).to(**to),
    )


def gemm_conv2d(
    x: Tensor,
    packed: Tensor,
    r: Tuple[int, int],
    stride: Tuple[int, int],
    padding: Tuple[int, int],
    bias: Optional[Tensor] = None,
) -> Tensor:
    """Convolution as im2col + one GEMM (for few input channels).

    Args:
        x (Tensor): ``[N, C, H, W]``, any memory format.
        packed (Tensor): ``[kh*kw*C, O]``, the weight as
            ``weight.permute(2, 3, 1, 0)`` flattened.
        r (tuple[int]): Kernel size (kh, kw).
        stride (tuple[int]): Stride (h, w).
        padding (tuple[int]): Zero padding (h, w).
        bias (Tensor, optional): ``[O]``.

    Returns:
        Tensor: ``[N, O, Ho, Wo]`` (channels-last strides).
    """
    N, C, H, W = x.shape
    (kh, kw), (sh, sw) = r, stride
    Ho = (H + 2 * padding[0] - kh) // sh + 1
    Wo = (W + 2 * padding[1] - kw) // sw + 1
    xn = _nhwc_padded(x, padding, (0, 0))
    Hq, Wq = xn.shape[1:3]
    cols = xn.as_strided(
        (N, Ho, Wo, kh, kw, C),
        (Hq * Wq * C, sh * Wq * C, sw * C, Wq * C, C, 1),
    ).reshape(N * Ho * Wo, kh * kw * C)
    if bias is not None:
        out = torch.addmm(bias, cols, packed)
    else:
        out = torch.mm(cols, packed)
    return out.view(N, Ho, Wo, -1).permute(0, 3, 1, 2)


def share_conv(conv: nn.Conv2d, cls: type = nn.Conv2d) -> nn.Conv2d:
    """A ``cls`` (``nn.Conv2d`` or a subclass) like ``conv``, same parameters.

    The new module holds ``conv``'s parameter objects themselves (nothing is
    copied), so both see every change of the weights.
    """
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        padding_mode=conv.padding_mode,
        device='meta',  # replaced by conv's parameters below
    )
    new.weight, new.bias = conv.weight, conv.bias
    new.train(conv.training)
    return new


@MODELS.register_module()
class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` with a selectable CPU inference algorithm.

    The parameters (and state-dict keys) are those of ``nn.Conv2d``. The
    chosen algorithm runs when gradients are off; the packed weights are
    rebuilt whenever the weight tensor changes (in place or replaced).

    Args:
        *args: ``nn.Conv2d`` arguments.
        algorithm (str): One of ``'nchw'``, ``'nhwc'``, ``'winograd'``,
            ``'gemm'``.
        tile (int): Winograd output tile size m.
        **kwargs: ``nn.Conv2d`` keyword arguments.
    """

    def __init__(self, *args, algorithm: str = 'nchw', tile: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self._packed = None
        self._packed_key = None
        self.set_algorithm(algorithm, tile)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, algorithm: str = 'nchw', tile: int = 4):
        """A ``FastConv2d`` sharing ``conv``'s parameters (no copy)."""
        new = share_conv(conv, cls)
        new.set_algorithm(algorithm, tile)
        return new

    def set_algorithm(self, algorithm: str, tile: int = 4) -> None:
        """Switch the inference algorithm (checks that it applies)."""
        if algorithm not in ALGORITHMS:
            raise ValueError(
                f'algorithm must be one of {ALGORITHMS}, got {algorithm!r}'
            )
        if algorithm == 'winograd' and not winograd_supported(self, tile):
            raise ValueError(f'{self} cannot run as Winograd F({tile}, r)')
        if algorithm == 'gemm' and not gemm_supported(self):
            raise ValueError(f'{self} cannot run as im2col + GEMM')
        self.algorithm, self.tile = algorithm, tile
        self._packed = self._packed_key = None
        fmt = torch.contiguous_format if algorithm == 'nchw' else torch.channels_last
        self.weight.data = self.weight.data.contiguous(memory_format=fmt)

    def _pack(self) -> tuple:
        w = self.weight
        key = (self.algorithm, self.tile, w.data_ptr(), w._version, w.dtype, w.device)
        if self._packed_key != key:
            if self.algorithm == 'winograd':
                self._packed = pack_winograd_weight(w, self.tile)
            else:
                self._packed = (
                    w.detach().permute(2, 3, 1, 0).reshape(-1, w.shape[0]).contiguous(),
                )
            self._packed_key = key
        return self._packed

    def forward(self, x: Tensor) -> Tensor:
        """``[N, C, H, W] -> [N, O, Ho, Wo]`` by the chosen algorithm."""
        if self.algorithm in ('nchw', 'nhwc') or (
            torch.is_grad_enabled() and self.weight.requires_grad
        ):
            fmt = (
                torch.channels_last
                if self.algorithm != 'nchw'
                else torch.contiguous_format
            )
            return super().forward(x.contiguous(memory_format=fmt))
        pad = tuple(self.padding)
        if self.algorithm == 'winograd':
            packed, k_in, k_out = self._pack()
            r = self.kernel_size[0]
            return winograd_conv2d(x, packed, k_in, k_out, self.tile, r, pad, self.bias)
        (packed,) = self._pack()
        return gemm_conv2d(x, packed, self.kernel_size, self.stride, pad, self.bias)

    _plain_repr = False  # set by architecture_repr()

    def _get_name(self) -> str:
        return 'Conv2d' if FastConv2d._plain_repr else super()._get_name()

    def extra_repr(self) -> str:
        """``nn.Conv2d``'s description plus the algorithm."""
        if FastConv2d._plain_repr:
            return super().extra_repr()
        algo = (
            f'winograd F({self.tile})'
            if self.algorithm == 'winograd'
            else self.algorithm
        )
        return f'{super().extra_repr()}, algorithm={algo}'


def architecture_repr(module: nn.Module) -> str:
    """``repr(module)`` with every :class:`FastConv2d` shown as ``Conv2d``.

    The inference algorithm is not part of the architecture: a model saves
    and fingerprints (e.g. a defect bank's model identity) the same before
    and after :func:`fdseg.deploy.optimize_for_cpu`.
    """
    FastConv2d._plain_repr = True
    try:
        return repr(module)
    finally:
        FastConv2d._plain_repr = False
