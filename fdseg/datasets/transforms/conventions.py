"""Pixel conventions of images and masks, one set of rules for every reader.

The dataset (:func:`read_image` / :func:`read_mask` in
:mod:`.episode_transforms`) and the inference API
(:class:`fdseg.apis.FewShotInferencer`) turn whatever they are given into
uint8 RGB images and uint8 0..255 masks with the functions below, so that a
file and the same pixels passed as an array mean the same thing. Where the
convention of the input is unambiguous it is converted; otherwise a
``ValueError`` names the input and the setting to change. The rules are
documented in ``docs/datasets.md`` ("Image and mask conventions").

Images (:func:`image_to_rgb_uint8`):

- uint8: as stored. uint16 (or other integers above 255): scaled by the
  bit depth, ``round(v * 255 / (2 ** bits - 1))``, where ``bits`` is given
  (``image_bit_depth`` of a product) or the smallest of 8, 10, 12, 14, 16
  that holds the image's maximum, so 12-bit data in a 16-bit file spans
  0..255 instead of 0..15.
- float: ``[0, 1]`` is scaled by 255, ``[0, 255]`` is kept; anything else
  (negative, above 255, NaN) is an error.
- 1 channel is repeated to 3; 4 channels: a constant alpha is dropped, an
  alpha with transparent pixels is an error (what lies under them is not
  defined).

Masks (:func:`mask_to_uint8`), per ``mask_mode``:

- channels: gray as is; colour with equal channels is gray; colour on
  black (binary only) is the channel maximum; with alpha, a constant alpha is
  dropped, a constant colour means the mask is drawn in the alpha channel
  (alpha is used), otherwise a pixel counts with ``min(colour, alpha)``
  (visible and not black). Palette PNGs give their palette *index*, never
  the brightness of its colour.
- ``'binary'``: bool and 0/1 (any dtype) become 0/255; uint8 is kept;
  16-bit is scaled by its bit depth as images are; float ``[0, 1]`` is
  scaled by 255. A palette mask must use one non-zero index (index 0 is
  background). A mask whose non-zero values all lie at or below
  ``mask_threshold`` would be empty after thresholding: error.
- ``'index'``: values are class values (no scaling); the mask must hold the
  category's value (or be empty) and, when the product's class values are
  known, no other values than those, 0 and 255 (ignore), which catches
  anti-aliased binary masks read as value-indexed.
"""

import os
import tempfile
import threading
from typing import Iterable, Optional, Tuple

import cv2
import numpy as np

#: Bit depths tried, in order, for integer images above 8 bits.
BIT_DEPTHS = (8, 10, 12, 14, 16)

#: File suffixes listed as images (compared lower-case) by every dataset:
#: the episodic datasets' folders and the distillation image folder.
IMG_EXTENSIONS = (
    '.jpg',
    '.jpeg',
    '.png',
    '.bmp',
    '.ppm',
    '.pgm',
    '.tif',
    '.tiff',
    '.webp',
)

__all__ = [
    'BIT_DEPTHS',
    'IMG_EXTENSIONS',
    'image_to_rgb_uint8',
    'mask_to_uint8',
    'infer_bit_depth',
    'decode_image_file',
    'decode_mask_file',
    'is_palette_png',
    'file_format',
]


# ----------------------------------------------------------------------
# values
# ----------------------------------------------------------------------
def infer_bit_depth(max_value: float) -> int:
    """The smallest of :data:`BIT_DEPTHS` whose range holds ``max_value``."""
    for bits in BIT_DEPTHS:
        if max_value < 2**bits:
            return bits
    raise ValueError(f'value {max_value} does not fit in 16 bits')


def _scale_bits(arr: np.ndarray, name: str, bit_depth: Optional[int]) -> np.ndarray:
    """Integers of ``bit_depth`` bits (inferred if None) -> uint8."""
    hi = int(arr.max(initial=0))
    bits = bit_depth or infer_bit_depth(hi)
    if hi >= 2**bits:
        raise ValueError(
            f'{name}: values up to {hi} do not fit the declared bit depth '
            f'{bits} (image_bit_depth); set it to the depth of the data'
        )
    if bits == 8:
        return arr.astype(np.uint8)
    out = arr.astype(np.float32) * (255.0 / (2**bits - 1))
    return np.rint(out).astype(np.uint8)


def _values_to_uint8(
    arr: np.ndarray, name: str, bit_depth: Optional[int] = None
) -> np.ndarray:
    """Image values of any dtype -> uint8 0..255 (module docstring rules)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == bool:
        raise ValueError(f'{name}: got a bool array, not an image')
    if np.issubdtype(arr.dtype, np.integer):
        lo = int(arr.min(initial=0))
        if lo < 0:
            raise ValueError(
                f'{name}: integer image with negative values '
                f'(min {lo}); pass uint8 0..255 or uint16'
            )
        if int(arr.max(initial=0)) > 65535:
            raise ValueError(
                f'{name}: integer image with values above '
                f'65535 ({arr.dtype}); pass uint8 or uint16'
            )
        return _scale_bits(arr, name, bit_depth)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f'{name}: float image with NaN or inf values')
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        if lo < 0 or hi > 255:
            raise ValueError(
                f'{name}: float image with values in [{lo:.3g}, {hi:.3g}]; '
                'pass [0, 1] or [0, 255] floats (undo any mean/std '
                'normalisation first) or uint8'
            )
        # [0, 1] floats are the usual "normalised" images; an image on the
        # 0..255 scale whose maximum is <= 1 is black and cannot be told
        # apart (documented).
        scale = 255.0 if hi <= 1.0 else 1.0
        return np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8)
    raise ValueError(f'{name}: unsupported dtype {arr.dtype}')


def image_to_rgb_uint8(
    arr: np.ndarray, name: str, order: str = 'rgb', bit_depth: Optional[int] = None
) -> np.ndarray:
    """Convert an ``[H, W]`` / ``[H, W, C]`` image to uint8 RGB ``[H, W, 3]``.

    Args:
        arr (np.ndarray): Image, C in 1, 3, 4 (channel last).
        name (str): What to call it in errors (a path or an argument).
        order (str): Channel order of ``arr``: ``'rgb'`` or ``'bgr'``
            (OpenCV's decoders).
        bit_depth (int, optional): Bit depth of integer data above 8 bits;
            inferred from the maximum if None.

    Raises:
        ValueError: Unsupported shape, dtype or value range, or an alpha
            channel with transparent pixels.
    """
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        img = _values_to_uint8(arr, name, bit_depth)
        return np.repeat(img[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(
            f'{name}: expected an [H, W], [H, W, 3] or '
            f'[H, W, 4] image, got shape {tuple(arr.shape)}'
        )
    img = _values_to_uint8(arr, name, bit_depth)
    if img.shape[2] == 4:
        alpha = img[..., 3]
        if alpha.min() != alpha.max():
            raise ValueError(
                f'{name}: RGBA image with transparent pixels (alpha '
                f'{int(alpha.min())}..{int(alpha.max())}); flatten it onto a '
                'background first (what lies under transparent pixels is '
                'not defined)'
            )
        img = img[..., :3]
    if order == 'bgr':
        img = img[..., ::-1]
    return np.ascontiguousarray(img)


def _reduce_mask_channels(arr: np.ndarray, name: str, mode: str) -> np.ndarray:
    """``[H, W, C]`` mask -> ``[H, W]`` (module docstring rules)."""
    if arr.ndim == 2:
        return arr
    if arr.ndim != 3 or arr.shape[2] not in (1, 2, 3, 4):
        raise ValueError(
            f'{name}: expected an [H, W] mask, got shape {tuple(arr.shape)}'
        )
    if arr.shape[2] == 1:
        return arr[..., 0]
    n_colour = 1 if arr.shape[2] in (1, 2) else 3
    colour = arr[..., :n_colour]
    alpha = arr[..., n_colour] if arr.shape[2] in (2, 4) else None
    if n_colour == 3:
        if (colour == colour[..., :1]).all():
            colour = colour[..., 0]
        elif mode == 'binary':
            # Colour on black: any non-black pixel is foreground. The
            # brightness (what OpenCV's grayscale gives) would drop dark
            # colours below the threshold.
            colour = colour.max(axis=2)
        else:
            raise ValueError(
                f'{name}: colour-coded mask (its channels differ) with '
                "mask_mode='index'; convert it to single-channel class "
                'values'
            )
    else:
        colour = colour[..., 0]
    if alpha is None or alpha.min() == alpha.max():
        return colour
    if colour.min() == colour.max():
        return alpha  # drawn in the alpha channel only
    if mode != 'binary':
        raise ValueError(
            f'{name}: value-indexed mask with a varying alpha '
            'channel; convert it to single-channel class values'
        )
    return np.minimum(colour, alpha)


def mask_to_uint8(
    arr: np.ndarray,
    name: str,
    mode: Optional[str] = 'binary',
    value: Optional[int] = None,
    threshold: Optional[float] = None,
    class_values: Optional[Iterable[int]] = None,
    palette: bool = False,
    setting: str = 'the product',
    index_hint: Optional[str] = None,
) -> np.ndarray:
    """Convert a decoded mask to uint8 ``[H, W]`` in the given convention.

    Args:
        arr (np.ndarray): ``[H, W]`` or ``[H, W, C]`` mask values (palette
            indices when ``palette``).
        name (str): What to call it in errors (a path or an argument).
        mode (str, optional): ``'binary'`` (returns 0..255 intensities to be
            thresholded after resizing), ``'index'`` (returns 0/255 for
            ``== value``) or None (the stored values after the channel
            rules; integer dtype kept).
        value (int, optional): Class value for ``'index'``.
        threshold (float, optional): ``mask_threshold`` of a binary mask; a
            mask that is non-zero but nowhere above it is an error. No check
            when None.
        class_values (Iterable[int], optional): All class values of the
            product (``'index'``); other non-zero values except 255 are an
            error.
        palette (bool): ``arr`` holds palette indices.
        setting (str): Where the settings named in errors live (e.g.
            ``"product 'neu_seg'"``).
        index_hint (str, optional): What to do with a value-indexed mask
            passed as binary; defaults to setting ``mask_mode='index'``.

    Raises:
        ValueError: A mask that does not fit the convention; the message
            names ``name`` and the setting to change.
    """
    arr = np.asarray(arr)
    arr = _reduce_mask_channels(arr, name, mode or 'binary')
    if mode is None:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError(f'{name}: float mask with NaN or inf values')
        if mode == 'index' and not (arr == np.rint(arr)).all():
            raise ValueError(f'{name}: value-indexed mask with fractional values')
    if arr.dtype != bool and float(arr.min(initial=0)) < 0:
        raise ValueError(f'{name}: mask with negative values (min {arr.min()})')
    if mode == 'index':
        return _index_mask(arr, name, value, class_values, setting)
    index_hint = index_hint or f"set mask_mode='index' for {setting}"
    if mode != 'binary':
        raise ValueError(f"mask_mode must be 'binary' or 'index', got {mode!r}")
    if palette:
        used = [int(v) for v in np.unique(arr) if v != 0]
        if len(used) > 1:
            raise ValueError(
                f'{name}: palette mask with several non-zero indices {used}; '
                f'it looks value-indexed: {index_hint}'
            )
        return (arr != 0).astype(np.uint8) * 255
    hi = float(arr.max(initial=0))
    if arr.dtype == bool or hi <= 1:
        # 0/1 masks (and [0, 1] soft floats) are on the 0..1 scale.
        out = np.rint(arr.astype(np.float32) * 255).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if hi > 255:
            raise ValueError(
                f'{name}: float mask with values up to {hi:.4g}; '
                'pass [0, 1] or [0, 255]'
            )
        out = np.rint(arr).astype(np.uint8)
    elif hi <= 255:
        out = arr.astype(np.uint8)
    else:
        out = _scale_bits(arr, name, None)
    if threshold is not None:
        top = int(out.max(initial=0))
        if 0 < top <= threshold:
            raise ValueError(
                f'{name}: every non-zero mask value is <= mask_threshold '
                f'{threshold} (max {int(hi) if hi == int(hi) else hi}), so '
                'its foreground would be empty. If the mask is value-indexed, '
                f'{index_hint}; if its foreground value is {top}, set '
                f'mask_threshold of {setting} below {top}'
            )
    return out


def _index_mask(
    arr: np.ndarray,
    name: str,
    value: Optional[int],
    class_values: Optional[Iterable[int]],
    setting: str,
) -> np.ndarray:
    if value is None:
        raise ValueError(f'{name}: value-indexed mask without a class value')
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    flat = arr.ravel()
    if arr.dtype in (np.uint8, np.uint16):
        counts = np.bincount(flat)
        present = np.flatnonzero(counts)
    else:
        present = np.unique(flat)
    present = [int(v) for v in present if v != 0]
    if class_values is not None:
        allowed = {int(v) for v in class_values} | {255}
        odd = [v for v in present if v not in allowed]
        if odd:
            shown = odd if len(odd) <= 8 else odd[:8] + ['...']
            raise ValueError(
                f'{name}: value-indexed mask holds values {shown} that are '
                f'no class value of {setting} ({sorted(allowed - {255})}, '
                '255 = ignore). If it is a binary (possibly anti-aliased) '
                "mask set mask_mode='binary'; otherwise fix index_map"
            )
    if present and int(value) not in present:
        raise ValueError(
            f'{name}: value-indexed mask holds values {present[:8]} but not '
            f"this category's value {value}. Check index_map of {setting}, "
            "or set mask_mode='binary' if the mask is binary"
        )
    return (arr == value).astype(np.uint8) * 255


# ----------------------------------------------------------------------
# decoding
# ----------------------------------------------------------------------
_JPEG_EXTS = ('.jpg', '.jpeg', '.jpe', '.jfif')
_CAPTURE_LOCK = threading.Lock()
_CAPTURE_FILE = {}  # pid -> temporary file receiving fd 2 while decoding
# libjpeg warnings that mean the pixels are not what was stored.
_JPEG_CORRUPT = ('Corrupt JPEG data', 'Premature end of JPEG file')


def _capture_file():
    # One file per process: a forked dataloader worker must not share the
    # file offset with its parent.
    f = _CAPTURE_FILE.get(os.getpid())
    if f is None:
        _CAPTURE_FILE.clear()
        f = _CAPTURE_FILE[os.getpid()] = tempfile.TemporaryFile()
    return f


def _imdecode_checked(path: str, buf: np.ndarray, flags: int):
    """``cv2.imdecode`` of a JPEG, raising on libjpeg's corruption warnings.

    libjpeg reports a corrupt entropy-coded segment only as a warning on
    stderr (without the file name) and returns the damaged pixels, so fd 2 is
    redirected to a temporary file for the call (about 0.1 ms). The lock
    keeps two threads from swapping fd 2 under each other; other output
    caught in the window is written back to stderr.
    """
    with _CAPTURE_LOCK:
        try:
            sink = _capture_file()
            saved = os.dup(2)
        except OSError:  # no usable fd 2 (or no temp dir): decode unchecked
            return cv2.imdecode(buf, flags)
        sink.seek(0)
        sink.truncate()
        try:
            os.dup2(sink.fileno(), 2)
            img = cv2.imdecode(buf, flags)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode('utf-8', 'replace')
    if text:
        bad = [ln for ln in text.splitlines() if ln.startswith(_JPEG_CORRUPT)]
        rest = ''.join(
            ln + '\n' for ln in text.splitlines() if not ln.startswith(_JPEG_CORRUPT)
        )
        if rest:
            os.write(2, rest.encode())
        if bad:
            raise OSError(
                f'{path} is a corrupt JPEG (libjpeg: '
                f'{"; ".join(bad)}); re-export or remove it'
            )
    return img


_PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def file_format(path: str, buf: np.ndarray) -> Optional[str]:
    """``'jpeg'``, ``'png'`` or None (other): by content, else by suffix.

    Content first: ImageNet's train set holds a PNG named ``.JPEG``. Bytes
    of neither signature fall back to the suffix, so a damaged ``.jpg``
    is still checked as a JPEG.
    """
    head = buf[:8].tobytes()
    if head[:3] == b'\xff\xd8\xff':
        return 'jpeg'
    if head == _PNG_MAGIC:
        return 'png'
    lower = path.lower()
    if lower.endswith(_JPEG_EXTS):
        return 'jpeg'
    if lower.endswith('.png'):
        return 'png'
    return None


def is_palette_png(buf: np.ndarray) -> bool:
    """Whether ``buf`` is a PNG with colour type 3 (palette)."""
    head = buf[:26].tobytes()
    return (
        head[:8] == _PNG_MAGIC
        and len(head) == 26
        and head[12:16] == b'IHDR'
        and head[25] == 3
    )


def decode_image_file(path: str, buf: np.ndarray) -> Tuple[np.ndarray, str]:
    """Decode image bytes; returns ``(array, channel order)``.

    JPEGs (by content, see :func:`file_format`) are decoded as before (8-bit
    colour, EXIF orientation applied) and checked for corruption; other
    formats as stored (``IMREAD_UNCHANGED``: 16-bit depth, float and alpha kept) for
    :func:`image_to_rgb_uint8` to convert.
    """
    if file_format(path, buf) == 'jpeg':
        img = _imdecode_checked(path, buf, cv2.IMREAD_COLOR)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'{path} cannot be decoded as an image')
    return img, 'bgr'


def decode_mask_file(path: str, buf: np.ndarray) -> Tuple[np.ndarray, bool]:
    """Decode mask bytes; returns ``(array, holds palette indices)``.

    Palette PNGs are read with Pillow for their indices (OpenCV expands them
    to colours); JPEGs as colour (EXIF orientation applied, corruption
    checked); other formats as stored.
    """
    if is_palette_png(buf):
        import io

        from PIL import Image

        try:
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                return np.asarray(im), im.mode == 'P'
        except Exception as e:  # Pillow raises several types
            raise OSError(f'{path} cannot be decoded as a palette PNG: {e}') from e
    if file_format(path, buf) == 'jpeg':
        img = _imdecode_checked(path, buf, cv2.IMREAD_ANYCOLOR)
    else:
        img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise OSError(f'{path} cannot be decoded as an image')
    return img, False
