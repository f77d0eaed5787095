"""The quick-start filter bank: FFT path == direct path; known responses."""

import torch

from fdseg.models.backbones import FilterBank


def test_fft_path_equals_direct_convolution():
    x = torch.randn(2, 3, 64, 80)
    a = FilterBank(use_fft=True, normalize='none')
    b = FilterBank(use_fft=False, normalize='none')
    ya, yb = a(x)[0], b(x)[0]
    assert ya.shape == (2, a.out_channels, 16, 20)
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-4)


def test_constant_image_has_zero_texture_responses():
    fb = FilterBank(normalize='none', input_normalized=False)
    x = torch.full((1, 3, 32, 32), 0.25)
    x[:, 1] = 0.5
    (y,) = fb(x)  # one level
    torch.testing.assert_close(y[0, 0], torch.full((8, 8), 0.25))
    torch.testing.assert_close(y[0, 1], torch.full((8, 8), 0.5))
    # detail, LoG, Gabor energy and local std vanish on a flat image
    # (local std is a sqrt of a float difference: ~1e-4 of noise)
    assert y[0, 3:].abs().max() < 1e-3


def test_edge_responds_where_the_edge_is():
    fb = FilterBank(normalize='none', input_normalized=False)
    x = torch.zeros(1, 3, 64, 64)
    x[..., 32:] = 1.0  # a vertical step edge at column 32
    (y,) = fb(x)  # one level
    n = len(fb.sigmas)
    log = y[0, 6 : 6 + n].sum(0)  # LoG magnitudes, [16, 16]
    cols = log.mean(0)
    assert cols.argmax() in (7, 8)  # cells 7/8 span columns 28..35
    assert cols[0] < 1e-4 and cols[-1] < 1e-4
