"""A training-free classical filter bank: the offline default backbone.

No weights, nothing to download: colour, Laplacian-of-Gaussian, Gabor and
local-contrast responses at a few scales, average-pooled to the output
stride. It stands in for a learned extractor in the quick start and in
tests; it is not a substitute for the paper's distilled students (it has no
semantics, only local appearance).
"""

import math
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from fdseg.models.utils.constants import IMAGENET_MEAN_01, IMAGENET_STD_01
from fdseg.registry import MODELS


def _gaussian(sigma: float) -> Tensor:
    r = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _log_kernel(sigma: float) -> Tensor:
    r = max(2, int(math.ceil(3 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(x, x, indexing='ij')
    rr = (xx**2 + yy**2) / (2 * sigma**2)
    k = (rr - 1) * torch.exp(-rr)
    return k - k.mean()  # zero DC: flat regions respond 0


def _gabor(sigma: float, theta: float, lambd: float, phase: float) -> Tensor:
    r = max(2, int(math.ceil(2.5 * sigma)))
    x = torch.arange(-r, r + 1, dtype=torch.float32)
    yy, xx = torch.meshgrid(x, x, indexing='ij')
    xr = xx * math.cos(theta) + yy * math.sin(theta)
    yr = -xx * math.sin(theta) + yy * math.cos(theta)
    k = torch.exp(-(xr**2 + 0.5**2 * yr**2) / (2 * sigma**2)) * torch.cos(
        2 * math.pi * xr / lambd + phase
    )
    return k - k.mean()


@MODELS.register_module()
class FilterBank(BaseModule):
    """Classical filter-bank features ``[B, C, H / stride, W / stride]``.

    Channels (for the defaults, C = 3 + 3 + 3 + 8 + 3 = 20):

    - colour: RGB smoothed at ``sigmas[-1]`` (3);
    - colour detail: RGB minus its smoothed version (3);
    - LoG magnitude of the luminance at each of ``sigmas`` (3);
    - Gabor energy of the luminance, ``len(orientations)`` x ``wavelengths``
      (8);
    - local standard deviation of the luminance at each of ``sigmas`` (3).

    Responses are average-pooled to ``stride`` and, with
    ``normalize='instance'``, standardised per image and channel so that a
    defect shows as a deviation from its own image's statistics (the
    matcher's cosine similarity then compares *deviation patterns*).

    Args:
        stride (int): Output stride (4 gives 64x64 maps at 256x256, like the
            paper's students).
        sigmas (Sequence[float]): Scales of the LoG / contrast filters.
        orientations (int): Gabor orientations.
        wavelengths (Sequence[float]): Gabor wavelengths in pixels.
        normalize (str): ``'instance'`` or ``'none'``.
        input_normalized (bool): Inputs come ImageNet-normalised from the
            data preprocessor (undone here to work in 0..1 intensities).
        use_fft (bool): Apply every filter through one FFT (same result
            as direct convolution with reflect padding, up to float
            rounding; several times faster on CPU).
    """

    def __init__(
        self,
        stride: int = 4,
        sigmas: Sequence[float] = (1.0, 2.0, 4.0),
        orientations: int = 4,
        wavelengths: Sequence[float] = (4.0, 8.0),
        normalize: str = 'instance',
        input_normalized: bool = True,
        use_fft: bool = True,
        init_cfg: Optional[dict] = None,
    ):
        super().__init__(init_cfg)
        if normalize not in ('instance', 'none'):
            raise ValueError(
                f'normalize must be "instance" or "none", got {normalize!r}'
            )
        self.stride = stride
        self.out_stride = stride
        self.sigmas = tuple(sigmas)
        self.normalize = normalize
        self.input_normalized = input_normalized
        # ImageNet statistics in 0..1, to undo EpisodeDataPreprocessor's
        # normalisation.
        self.register_buffer(
            'mean', torch.tensor(IMAGENET_MEAN_01).view(1, 3, 1, 1), False
        )
        self.register_buffer(
            'std', torch.tensor(IMAGENET_STD_01).view(1, 3, 1, 1), False
        )
        for i, s in enumerate(self.sigmas):
            self.register_buffer(f'gauss{i}', _gaussian(s), False)
        gabors = []
        for lambd in wavelengths:
            for o in range(orientations):
                theta = math.pi * o / orientations
                for phase in (0.0, math.pi / 2):  # quadrature pair
                    gabors.append(_gabor(lambd / 2, theta, lambd, phase))
        size = max(g.shape[-1] for g in gabors)
        gabors = [F.pad(g, [(size - g.shape[-1]) // 2] * 4) for g in gabors]
        logs = [_log_kernel(sg) for sg in self.sigmas]
        size = max(size, max(k.shape[-1] for k in logs))
        bank = [F.pad(k, [(size - k.shape[-1]) // 2] * 4) for k in logs]
        bank += [F.pad(g, [(size - g.shape[-1]) // 2] * 4) for g in gabors]
        # [K, 1, k, k] correlation kernels of the luminance: LoGs, then
        # Gabor quadrature pairs.
        self.register_buffer('bank', torch.stack(bank)[:, None], False)
        self.num_gabor = len(gabors) // 2
        self.use_fft = use_fft
        self._fft_cache = {}
        self.out_channels = 6 + 2 * len(self.sigmas) + self.num_gabor

    def _blur(self, x: Tensor, i: int) -> Tensor:
        """Separable Gaussian blur of ``[B, c, H, W]`` at ``sigmas[i]``."""
        g = getattr(self, f'gauss{i}')
        c, r = x.shape[1], g.numel() // 2
        x = F.pad(x, (r, r, 0, 0), mode='reflect')
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
        x = F.pad(x, (0, 0, r, r), mode='reflect')
        return F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)

    def _responses_direct(self, x: Tensor, gray: Tensor):
        """Reference path: direct (separable / 2-D) convolutions."""
        n = len(self.sigmas)
        colour = self._blur(x, n - 1)
        k = self.bank
        r = k.shape[-1] // 2
        bank = F.conv2d(F.pad(gray, (r, r, r, r), mode='reflect'), k)
        means = torch.cat([self._blur(gray, i) for i in range(n)], 1)
        sq = torch.cat([self._blur(gray * gray, i) for i in range(n)], 1)
        return colour, bank, means, sq

    def _fft_kernels(self, Hp: int, Wp: int, R: int, device, dtype):
        """FFTs of every filter, each centred in a ``2R + 1`` frame."""
        key = (Hp, Wp, device, dtype)
        if key in self._fft_cache:
            return self._fft_cache[key]
        frames = []

        def frame(k2d):
            p = R - k2d.shape[-1] // 2
            return F.pad(k2d, (p, p, p, p))

        n = len(self.sigmas)
        gauss = [getattr(self, f'gauss{i}') for i in range(n)]
        gauss = [torch.outer(g, g) for g in gauss]
        frames += [frame(gauss[-1])] * 3  # colour, per RGB channel
        frames += [frame(k) for k in self.bank[:, 0]]  # luminance bank
        frames += [frame(g) for g in gauss]  # local means
        frames += [frame(g) for g in gauss]  # local second moments
        # correlation = convolution with the flipped kernel
        kf = torch.fft.rfft2(
            torch.flip(torch.stack(frames), (-2, -1)).to(device, dtype), s=(Hp, Wp)
        )
        # input channel of each filter: R, G, B, gray (bank, means), gray^2
        src = [0, 1, 2] + [3] * (len(self.bank) + n) + [4] * n
        self._fft_cache = {key: (kf, torch.tensor(src, device=device))}
        return self._fft_cache[key]

    def _responses_fft(self, x: Tensor, gray: Tensor):
        """All filters through one forward and one inverse FFT."""
        n, K = len(self.sigmas), len(self.bank)
        R = max(
            self.bank.shape[-1] // 2,
            *(getattr(self, f'gauss{i}').numel() // 2 for i in range(n)),
        )
        stack = torch.cat([x, gray, gray * gray], 1)
        padded = F.pad(stack, (R, R, R, R), mode='reflect')
        Hp, Wp = padded.shape[-2:]
        kf, src = self._fft_kernels(Hp, Wp, R, padded.device, padded.dtype)
        spec = torch.fft.rfft2(padded)[:, src] * kf
        # circular convolution: the valid part starts at 2R
        out = torch.fft.irfft2(spec, s=(Hp, Wp))[..., 2 * R :, 2 * R :]
        return (
            out[:, :3],
            out[:, 3 : 3 + K],
            out[:, 3 + K : 3 + K + n],
            out[:, 3 + K + n :],
        )

    def forward(self, x: Tensor) -> Tuple[Tensor]:
        """``[B, 3, H, W]`` -> one level ``([B, C, H / stride, W / stride],)``."""
        if self.input_normalized:
            x = x * self.std + self.mean
        gray = 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
        responses = self._responses_fft if self.use_fft else self._responses_direct
        colour, bank, means, sq = responses(x, gray)
        n = len(self.sigmas)
        g = bank[:, n:]
        energy = (
            g.reshape(g.shape[0], self.num_gabor, 2, *g.shape[-2:]).pow(2).sum(2).sqrt()
        )
        std = (sq - means * means).clamp_min(0).sqrt()
        # The detail channel is signed and averages out; pool its magnitude.
        f = torch.cat([colour, (x - colour).abs(), bank[:, :n].abs(), energy, std], 1)
        f = F.avg_pool2d(f, self.stride, self.stride)
        if self.normalize == 'instance':
            mu = f.mean((2, 3), keepdim=True)
            sd = f.std((2, 3), keepdim=True).clamp_min(1e-6)
            f = (f - mu) / sd
        return (f,)
