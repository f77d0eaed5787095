"""Center-pivot 4D convolution: hand-worked values and a naive loop reference."""

import pytest
import torch

from fdseg.models.utils import CenterPivotConv4d


def naive_center_pivot(x, w1, b1, w2, b2, stride, padding):
    """The definition, one output element at a time (6 nested loops).

    ``y[o, i, j, k, l] = b1 + b2 + sum_{a, b} w1[o, :, a, b] .
    x[:, i s1 + a - p1, j s2 + b - p2, k s3, l s4] + sum_{a, b}
    w2[o, :, a, b] . x[:, i s1, j s2, k s3 + a - p3, l s4 + b - p4]``,
    out-of-range positions counting as zero.
    """
    C, Hq, Wq, Hs, Ws = x.shape
    co, _, k1, k2 = w1.shape
    k3, k4 = w2.shape[-2:]
    s1, s2, s3, s4 = stride
    p1, p2, p3, p4 = padding
    oq = ((Hq + 2 * p1 - k1) // s1 + 1, (Wq + 2 * p2 - k2) // s2 + 1)
    os_ = ((Hs + 2 * p3 - k3) // s3 + 1, (Ws + 2 * p4 - k4) // s4 + 1)
    y = torch.zeros(co, *oq, *os_, dtype=torch.float64)
    x = x.double()
    for i in range(oq[0]):
        for j in range(oq[1]):
            for k in range(os_[0]):
                for m in range(os_[1]):
                    acc = (b1 + b2).double()
                    for a in range(max(k1, k3)):
                        for b in range(max(k2, k4)):
                            qi, qj = i * s1 + a - p1, j * s2 + b - p2
                            if a < k1 and b < k2 and 0 <= qi < Hq and 0 <= qj < Wq:
                                acc += (
                                    w1[:, :, a, b].double()
                                    @ x[:, qi, qj, k * s3, m * s4]
                                )
                            si, sj = k * s3 + a - p3, m * s4 + b - p4
                            if a < k3 and b < k4 and 0 <= si < Hs and 0 <= sj < Ws:
                                acc += (
                                    w2[:, :, a, b].double()
                                    @ x[:, i * s1, j * s2, si, sj]
                                )
                    y[:, i, j, k, m] = acc
    return y


def _ones_conv(stride):
    conv = CenterPivotConv4d(1, 1, 3, stride, 1, bias=False)
    with torch.no_grad():
        conv.conv1.weight.fill_(1.0)
        conv.conv2.weight.fill_(1.0)
    return conv


def test_hand_worked_values():
    """All-ones 3x3x3x3 input, all-ones 3x3 kernels, padding 1: each plane
    counts the in-range neighbours of its 3x3 grid (corner 4, edge 6,
    centre 9); the output is the sum of the two counts."""
    x = torch.ones(1, 1, 3, 3, 3, 3)
    y = _ones_conv(1)(x)[0, 0]
    assert y[0, 0, 0, 0] == 4 + 4
    assert y[1, 1, 1, 1] == 9 + 9
    assert y[0, 0, 1, 1] == 4 + 9
    assert y[0, 1, 2, 2] == 6 + 4
    # Support stride 2: support outputs at positions 0 and 2 (corners,
    # count 4); the query plane sees those support positions only.
    y = _ones_conv((1, 1, 2, 2))(x)[0, 0]
    assert y.shape == (3, 3, 2, 2)
    assert y[1, 1, 0, 0] == 9 + 4 and y[0, 0, 1, 1] == 4 + 4
    assert y[0, 1, 1, 0] == 6 + 4
    # A single non-zero input value reaches exactly the outputs whose
    # query or support 3x3 window holds it in the matching plane.
    x = torch.zeros(1, 1, 3, 3, 3, 3)
    x[0, 0, 0, 0, 2, 2] = 1.0
    y = _ones_conv(1)(x)[0, 0]
    assert y[1, 1, 2, 2] == 1  # query plane (support pos (2,2) fixed)
    assert y[0, 0, 1, 1] == 1  # support plane (query pos (0,0) fixed)
    assert y[1, 1, 1, 1] == 0  # neither plane through (0,0,2,2)
    assert y[0, 0, 2, 2] == 2  # the centre of both planes
    assert y.sum() == 4 + 4 and (y > 0).sum() == 7


@pytest.mark.parametrize(
    'kernel,stride',
    [((3, 3, 5, 5), (1, 1, 2, 2)), ((3, 5, 3, 3), (2, 1, 1, 2))],
)
def test_equals_naive_loops_at_two_sizes(kernel, stride):
    """Random weights; the same module on two input sizes in one process
    (the official module caches its subsampling indices on the first call
    and fails on the second size)."""
    torch.manual_seed(0)
    pad = tuple(k // 2 for k in kernel)
    conv = CenterPivotConv4d(2, 3, kernel, stride, pad).double()
    for shape in ((3, 4, 4, 3), (4, 3, 3, 5)):
        x = torch.randn(1, 2, *shape, dtype=torch.float64)
        ref = naive_center_pivot(
            x[0],
            conv.conv1.weight,
            conv.conv1.bias,
            conv.conv2.weight,
            conv.conv2.bias,
            stride,
            pad,
        )
        got = conv(x)[0]
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10)


def test_plane_mismatch_is_an_error():
    conv = CenterPivotConv4d(1, 1, (3, 3, 2, 2), (1, 1, 1, 1), (1, 1, 0, 0))
    with pytest.raises(ValueError, match='planes disagree'):
        conv(torch.zeros(1, 1, 3, 3, 4, 4))
    with pytest.raises(ValueError, match='expected'):
        conv(torch.zeros(1, 1, 3, 3, 4))
