"""FastConv2d: Winograd and im2col convolutions against a float64 reference
(and argmax_labels, the other CPU shortcut of a query, against argmax).

The reference is ``F.conv2d`` in float64; the Winograd transforms are
checked on their own against the definition of a 1-D correlation.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fdseg.models.utils.fast_conv import (
    FastConv2d,
    winograd_conv2d,
    winograd_matrices,
)

# (tile m, kernel r): the sizes the CPU optimiser may choose (input tile <= 8)
SIZES = [(2, 3), (4, 3), (6, 3), (2, 4), (4, 4), (5, 4), (4, 2), (4, 5)]


@pytest.mark.parametrize('m,r', SIZES)
def test_winograd_matrices_compute_a_correlation(m, r):
    AT, G, BT = winograd_matrices(m, r)
    a = m + r - 1
    assert AT.shape == (m, a) and G.shape == (a, r)
    assert BT.shape == (a, a)
    g = torch.randn(r, dtype=torch.float64)
    d = torch.randn(a, dtype=torch.float64)
    y = AT @ ((G @ g) * (BT @ d))
    ref = torch.tensor([sum(g[k] * d[i + k] for k in range(r)) for i in range(m)])
    torch.testing.assert_close(y, ref, rtol=1e-10, atol=1e-10)


def test_winograd_matrices_reject_sizes_without_points():
    with pytest.raises(ValueError, match=r'F\(9, 4\)'):
        winograd_matrices(9, 4)


@torch.no_grad()
def _ref(conv, x):
    return F.conv2d(
        x.double(),
        conv.weight.double(),
        conv.bias.double() if conv.bias is not None else None,
        stride=conv.stride,
        padding=conv.padding,
    )


# (in, out, kernel, stride, padding, bias, input [N, C, H, W])
CONVS = [
    (16, 24, 4, 1, 3, True, (2, 16, 19, 23)),  # PDN-like 4x4, odd sizes
    (16, 8, 3, 1, 1, False, (1, 16, 17, 12)),
    (16, 8, 4, 1, 0, True, (1, 16, 11, 9)),  # valid (PDN's last conv)
    (8, 8, 3, 1, (0, 2), True, (1, 8, 9, 10)),  # asymmetric padding
    (3, 16, 4, 1, 3, True, (1, 3, 20, 20)),  # the 3-channel stem
]
# worst relative error allowed per algorithm (fp32 vs the float64 result)
TOL = {
    'nchw': 1e-5,
    'nhwc': 1e-5,
    'gemm': 1e-5,
    'winograd-4': 1e-4,
    'winograd-5': 3e-4,
    'winograd-6': 1e-3,
}


@pytest.mark.parametrize('spec', CONVS, ids=lambda s: f'k{s[2]}-p{s[4]}-c{s[0]}')
@pytest.mark.parametrize('algo', sorted(TOL))
def test_fast_conv_equals_conv2d(spec, algo):
    cin, cout, k, s, p, bias, shape = spec
    torch.manual_seed(0)
    conv = nn.Conv2d(cin, cout, k, stride=s, padding=p, bias=bias)
    x = torch.randn(shape)
    name, _, m = algo.partition('-')
    fast = FastConv2d.from_conv(conv, name, int(m or 4))
    with torch.no_grad():
        y = fast(x)
    ref = _ref(conv, x)
    assert y.shape == ref.shape
    rel = float((y.double() - ref).abs().max() / ref.abs().max())
    assert rel < TOL[algo], rel
    # not trivially exact: Winograd is a different computation
    if name == 'winograd':
        assert rel > 0


def test_gemm_handles_stride_and_winograd_refuses_it():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 7, stride=2, padding=3)  # a ResNet stem
    x = torch.randn(1, 3, 21, 18)
    with torch.no_grad():
        y = FastConv2d.from_conv(conv, 'gemm')(x)
    torch.testing.assert_close(y.double(), _ref(conv, x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match='cannot run as Winograd'):
        FastConv2d.from_conv(conv, 'winograd')
    with pytest.raises(ValueError, match="algorithm must be one of.*'fft'"):
        FastConv2d.from_conv(conv, 'fft')


def test_from_conv_shares_parameters_and_state_dict():
    conv = nn.Conv2d(4, 6, 3, padding=1)
    fast = FastConv2d.from_conv(conv, 'winograd', 4)
    assert fast.weight is conv.weight and fast.bias is conv.bias
    sd, ref = fast.state_dict(), conv.state_dict()
    assert list(sd) == list(ref)
    for key in ref:
        assert torch.equal(sd[key], ref[key])
    # a plain nn.Conv2d loads what FastConv2d saves, and vice versa
    other = nn.Conv2d(4, 6, 3, padding=1)
    other.load_state_dict(sd)
    assert torch.equal(other.weight, conv.weight)


def test_packed_weights_follow_a_loaded_state_dict():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    fast = FastConv2d.from_conv(conv, 'winograd', 4)
    x = torch.randn(1, 4, 9, 9)
    with torch.no_grad():
        fast(x)  # packs the current weights
        new = nn.Conv2d(4, 6, 3, padding=1)
        fast.load_state_dict(new.state_dict())
        y = fast(x)
    torch.testing.assert_close(y.double(), _ref(new, x), rtol=1e-4, atol=1e-5)


def test_gradients_use_the_plain_convolution():
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    twin = nn.Conv2d(4, 6, 3, padding=1)
    twin.load_state_dict(conv.state_dict())
    fast = FastConv2d.from_conv(conv, 'winograd', 4)
    x = torch.randn(1, 4, 9, 9)
    fast(x).square().sum().backward()
    twin(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, twin.weight.grad)


def test_winograd_conv2d_crops_partial_tiles():
    # 7x7 output with 4x4 tiles: the second tile row/column is cropped to 3
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = torch.randn(1, 2, 7, 7)
    from fdseg.models.utils.fast_conv import pack_winograd_weight

    packed, k_in, k_out = pack_winograd_weight(conv.weight, 4)
    with torch.no_grad():
        y = winograd_conv2d(x, packed, k_in, k_out, 4, 3, (1, 1))
    assert y.shape == (1, 3, 7, 7)
    torch.testing.assert_close(y.double(), _ref(conv, x), rtol=1e-4, atol=1e-5)


def test_argmax_labels_equals_argmax_with_ties_and_nan():
    from fdseg.models.utils import argmax_labels

    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 3, (2, 4, 16, 16), generator=g).float()  # many ties
    x[0, 1, 0, 0] = float('nan')
    x[1, 2:, 3, 3] = float('nan')
    for dim in (0, 1, 3):
        assert torch.equal(argmax_labels(x, dim), x.argmax(dim))
