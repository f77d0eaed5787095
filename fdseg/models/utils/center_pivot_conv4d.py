"""Center-pivot 4D convolution (HSNet, Min et al., ICCV 2021, Sec. 3.2).

A 4D kernel over ``(query_y, query_x, support_y, support_x)`` restricted to
the two 2D planes through its centre: a 2D convolution over the query dims
(support dims folded into the batch) plus a 2D convolution over the support
dims (query dims folded into the batch), summed. Written in plain torch.

Strides are applied by subsampling the dims the other convolution does not
stride: the query-plane conv sees every ``stride``-th support position and
the support-plane conv every ``stride``-th query position. Subsampling is a
strided slice computed on every call, so any input size works in one
process (the official module caches its ``index_select`` indices on the
first call and fails with an IndexError or a size mismatch when the size
changes).
"""

from typing import Sequence, Tuple, Union

from torch import Tensor, nn

from fdseg.registry import MODELS


def _quad(v: Union[int, Sequence[int]], name: str) -> Tuple[int, int, int, int]:
    v = (v,) * 4 if isinstance(v, int) else tuple(int(i) for i in v)
    if len(v) != 4:
        raise ValueError(f'{name} must be an int or 4 ints, got {v!r}')
    return v


@MODELS.register_module()
class CenterPivotConv4d(nn.Module):
    """Center-pivot 4D convolution on ``[B, C, Hq, Wq, Hs, Ws]`` tensors.

    ``y[b, o, i, j, k, l] = conv_q(x[b, :, :, :, k*s3, l*s4])[o, i, j]
    + conv_s(x[b, :, i*s1, j*s2, :, :])[o, k, l]`` where ``conv_q`` is a 2D
    conv over the query dims (kernel ``kernel_size[:2]``, stride
    ``stride[:2]``) and ``conv_s`` a 2D conv over the support dims (kernel
    ``kernel_size[2:]``, stride ``stride[2:]``). Parameter names follow the
    official module (``conv1`` query plane, ``conv2`` support plane).

    Args:
        in_channels (int): Input channels ``C``.
        out_channels (int): Output channels.
        kernel_size (int | Sequence[int]): 4 kernel sizes (odd).
        stride (int | Sequence[int]): 4 strides; HSNet strides only the
            support dims, ``(1, 1, s, s)``.
        padding (int | Sequence[int]): 4 paddings; ``k // 2`` keeps the two
            planes' output sizes equal (required).
        bias (bool): Biases of both 2D convs (both are added).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Union[int, Sequence[int]],
        stride: Union[int, Sequence[int]] = 1,
        padding: Union[int, Sequence[int]] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = _quad(kernel_size, 'kernel_size')
        self.stride = _quad(stride, 'stride')
        self.padding = _quad(padding, 'padding')
        k, s, p = self.kernel_size, self.stride, self.padding
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, k[:2], stride=s[:2], padding=p[:2], bias=bias
        )
        self.conv2 = nn.Conv2d(
            in_channels, out_channels, k[2:], stride=s[2:], padding=p[2:], bias=bias
        )

    def forward(self, x: Tensor) -> Tensor:
        """Apply the two planes and sum.

        Args:
            x (Tensor): ``[B, C, Hq, Wq, Hs, Ws]``.

        Returns:
            Tensor: ``[B, C_out, Hq', Wq', Hs', Ws']`` with
            ``Hq' = floor((Hq + 2 p1 - k1) / s1) + 1`` etc.
        """
        if x.dim() != 6:
            raise ValueError(f'expected [B, C, Hq, Wq, Hs, Ws], got {tuple(x.shape)}')
        s1, s2, s3, s4 = self.stride
        B, C, Hq, Wq, Hs, Ws = x.shape

        # Query plane: support positions subsampled by the support stride.
        xq = x[:, :, :, :, ::s3, ::s4]
        hs, ws = xq.shape[-2:]
        xq = xq.permute(0, 4, 5, 1, 2, 3).reshape(B * hs * ws, C, Hq, Wq)
        yq = self.conv1(xq)
        co, hq, wq = yq.shape[-3:]
        yq = yq.view(B, hs, ws, co, hq, wq).permute(0, 3, 4, 5, 1, 2)

        # Support plane: query positions subsampled by the query stride.
        xs = x[:, :, ::s1, ::s2]
        hq2, wq2 = xs.shape[2:4]
        xs = xs.permute(0, 2, 3, 1, 4, 5).reshape(B * hq2 * wq2, C, Hs, Ws)
        ys = self.conv2(xs)
        hs2, ws2 = ys.shape[-2:]
        ys = ys.view(B, hq2, wq2, co, hs2, ws2).permute(0, 3, 1, 2, 4, 5)

        if yq.shape != ys.shape:
            raise ValueError(
                f'CenterPivotConv4d planes disagree: query plane '
                f'{tuple(yq.shape)} vs support plane {tuple(ys.shape)} for '
                f'input {tuple(x.shape)}; use odd kernels with padding k // 2'
            )
        return (yq + ys).contiguous()


__all__ = ['CenterPivotConv4d']
