"""What a user may pass as images, turned into ``(name, RGB array)`` pairs.

:class:`ImageSource` accepts a file path, a folder, a glob, a
``pathlib.Path``, a PIL image, an array (**RGB**, not OpenCV's BGR), a
tensor, or a list mixing these. Files are listed when the source is built
(so "no images" fails before any work) and read one at a time while
iterating; a file that cannot be read (corrupt, truncated, outside the
conventions) is reported through ``on_error`` and skipped, so one bad
frame never stops a stream.

Example::

    from fdseg.apis import ImageSource
    src = ImageSource('line/2024-05-01/*.png', on_error=print)
    for name, rgb in src:          # rgb: [H, W, 3] uint8 RGB
        ...
    print(src.errors)              # [(name, message), ...]

Files are read by the dataset's rules
(:func:`fdseg.datasets.transforms.read_image`): 16-bit scaled by bit depth,
constant alpha dropped, truncated JPEG / PNG files refused.
"""

import glob
import os
import os.path as osp
import sys
from typing import Any, Callable, Iterator, List, Optional, Tuple, Union

import cv2
import numpy as np
import torch

from fdseg.datasets.few_shot_defect import list_folder
from fdseg.datasets.transforms import read_image
from fdseg.datasets.transforms.conventions import IMG_EXTENSIONS, image_to_rgb_uint8

#: A path (str / PathLike), an RGB ``[H, W, 3]`` / gray ``[H, W]`` array, a
#: ``[3, H, W]`` tensor or a PIL image.
ImageLike = Union[str, os.PathLike, np.ndarray, torch.Tensor, Any]

#: Errors of one input that a stream reports and skips.
READ_ERRORS = (OSError, ValueError, TypeError, cv2.error)

_GLOB_CHARS = ('*', '?', '[')

__all__ = [
    'ImageSource',
    'ImageLike',
    'READ_ERRORS',
    'is_pil',
    'is_path',
    'to_hwc',
    'pil_array',
    'load_rgb',
]


def is_pil(x) -> bool:
    """Whether ``x`` is a PIL image (PIL is not imported for the check)."""
    pil = sys.modules.get('PIL.Image')
    return pil is not None and isinstance(x, pil.Image)


def is_path(x) -> bool:
    """Whether ``x`` is a ``str`` or an ``os.PathLike``."""
    return isinstance(x, (str, os.PathLike))


def to_hwc(x, arg: str) -> np.ndarray:
    """Array / tensor -> numpy ``[H, W]`` or ``[H, W, C]``.

    Arrays are channel-last unless only channel-first fits, tensors the
    other way round; the channel count must be 1, 3 or 4.
    """
    chw_first = isinstance(x, torch.Tensor)
    if chw_first:
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if x.ndim == 2:
        return x
    if x.ndim != 3:
        raise ValueError(
            f'{arg}: expected [H, W], [H, W, C] or [C, H, W], '
            f'got shape {tuple(x.shape)}'
        )
    hwc, chw = x.shape[2] in (1, 3, 4), x.shape[0] in (1, 3, 4)
    if (chw_first and chw) or (chw and not hwc):
        return x.transpose(1, 2, 0)
    if hwc:
        return x
    raise ValueError(
        f'{arg}: no axis of shape {tuple(x.shape)} has 1, 3 '
        'or 4 channels (pass several images or masks as a '
        'list)'
    )


_PIL_KEEP = ('L', 'RGB', 'RGBA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def pil_array(im, arg: str, mask: bool) -> Tuple[np.ndarray, bool]:
    """A PIL image as an array; returns ``(array, palette indices)``.

    16-bit and float modes keep their values (the conventions scale them);
    an image of another mode is converted to RGB(A), a mask of a palette
    mode gives its indices (not the colours).
    """
    if mask:
        if im.mode == 'P':
            return np.asarray(im), True
        if im.mode not in _PIL_KEEP + ('1', 'LA'):
            raise ValueError(
                f'{arg}: PIL mask of mode {im.mode!r}; pass '
                "mode 'L', '1', 'P' or 'I;16'"
            )
        return np.asarray(im), False
    if im.mode not in _PIL_KEEP:
        alpha = im.mode in ('LA', 'PA', 'La', 'RGBa') or ('transparency' in im.info)
        im = im.convert('RGBA' if alpha else 'RGB')
    return np.asarray(im), False


def load_rgb(
    img: ImageLike, arg: str = 'image', bit_depth: Optional[int] = None
) -> np.ndarray:
    """Any accepted image -> uint8 RGB ``[H, W, 3]``.

    Args:
        img: A path, a PIL image, an RGB array or a tensor (see
            :class:`fdseg.apis.FewShotInferencer` for the value rules).
        arg (str): Name used in errors.
        bit_depth (int, optional): Bit depth of 16-bit data; inferred when
            None.

    Raises:
        FileNotFoundError, OSError: A file that is missing or unreadable.
        ValueError: Values or shapes outside the conventions.
        TypeError: An unsupported type.
    """
    if is_path(img):
        return read_image(os.fspath(img), bit_depth=bit_depth)
    if is_pil(img):
        arr = pil_array(img, arg, mask=False)[0]
    elif isinstance(img, (np.ndarray, torch.Tensor)):
        arr = to_hwc(img, arg)
    else:
        raise TypeError(
            f'{arg}: expected a path, an array, a tensor or a '
            f'PIL image, got {type(img).__name__}'
        )
    return image_to_rgb_uint8(arr, arg, 'rgb', bit_depth)


def _is_image_file(path: str) -> bool:
    name = osp.basename(path)
    return (
        not name.startswith('.')
        and name.lower().endswith(IMG_EXTENSIONS)
        and not osp.isdir(path)
    )


def _folder_items(folder: str, recursive: bool) -> List[Tuple[str, str]]:
    """``(name relative to folder, path)`` of the images in a folder."""
    if not recursive:
        names, _ = list_folder(folder)
        return [(n, osp.join(folder, n)) for n in names]
    out = []
    for root, dirs, _ in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith('.'))
        names, _ = list_folder(root)
        rel = osp.relpath(root, folder)
        for n in names:
            out.append((n if rel == '.' else osp.join(rel, n), osp.join(root, n)))
    return sorted(out)


def _glob_items(pattern: str) -> List[Tuple[str, str]]:
    """``(name, path)`` of the images a glob matches.

    Names are relative to the pattern's folder part before the first wild
    card, so ``line/*/img.png`` gives distinct names ``a/img.png``, ...
    """
    parts = pattern.replace('\\', '/').split('/')
    static = []
    for p in parts[:-1]:
        if any(c in p for c in _GLOB_CHARS):
            break
        static.append(p)
    base = '/'.join(static) if static else '.'
    if pattern.startswith('/') and not static[1:]:
        base = '/'
    paths = sorted(p for p in glob.glob(pattern, recursive=True) if _is_image_file(p))
    return [(osp.relpath(p, base), p) for p in paths]


class ImageSource:
    """Images from a path, folder, glob, array, PIL image or a list of them.

    Args:
        source: One of: an image file, a folder (its images; hidden and
            non-image files are left out), a glob (``'*.png'``,
            ``'line/**/*.jpg'``), a ``pathlib.Path``, a PIL image, an RGB
            ``[H, W, 3]`` / gray ``[H, W]`` array, a ``[3, H, W]`` tensor,
            a 4-D array / tensor (a batch), or a list of any of these.
        recursive (bool): List folders recursively (names keep the
            sub-folders).
        bit_depth (int, optional): Bit depth of 16-bit images.
        on_error (callable, optional): ``on_error(name, exc)`` for an input
            that cannot be read; it is then skipped (and recorded in
            :attr:`errors`). None: the error is raised.
        arg (str): Argument name used in messages.

    Attributes:
        items (list[tuple[str, object]]): ``(name, input)`` in order; a
            file's name is its path relative to the folder (or the glob's
            folder part), an in-memory image's is ``image_<i>``.
        errors (list[tuple[str, str]]): ``(name, message)`` of the inputs
            skipped so far.

    Raises:
        FileNotFoundError: A path that is neither a file, a folder nor a
            glob matching anything.
        ValueError: A folder or glob without images, or an empty list.
        TypeError: An unsupported type.
    """

    def __init__(
        self,
        source,
        recursive: bool = False,
        bit_depth: Optional[int] = None,
        on_error: Optional[Callable[[str, Exception], None]] = None,
        arg: str = 'source',
    ):
        self.source = source
        self.bit_depth = bit_depth
        self.on_error = on_error
        self.arg = arg
        self.errors: List[Tuple[str, str]] = []
        self.items: List[Tuple[str, Any]] = []
        self._add(source, recursive, top=True)
        if not self.items:
            raise ValueError(f'{arg}: no images in {_describe(source)}')

    def _add(self, source, recursive: bool, top: bool) -> None:
        if is_path(source):
            path = os.fspath(source)
            if osp.isdir(path):
                found = _folder_items(path, recursive)
                if not found:
                    raise ValueError(
                        f'{self.arg}: no images in folder {path} (suffixes '
                        f'{", ".join(IMG_EXTENSIONS)}'
                        + ('' if recursive else '; sub-folders are not listed')
                        + ')'
                    )
                self.items += found
            elif osp.isfile(path) or osp.islink(path):
                # a broken link stays: reading it names it
                self.items.append((osp.basename(path), path))
            elif any(c in path for c in _GLOB_CHARS):
                found = _glob_items(path)
                if not found:
                    raise ValueError(f'{self.arg}: the glob {path!r} matches no images')
                self.items += found
            else:
                raise FileNotFoundError(
                    f'{self.arg}: {path} is not a file, a folder or a glob'
                )
        elif is_pil(source):
            self._add_memory(source)
        elif isinstance(source, (np.ndarray, torch.Tensor)):
            if source.ndim == 4:
                for x in source:
                    self._add_memory(x)
            else:
                self._add_memory(source)
        elif isinstance(source, (list, tuple)) and top:
            if not source:
                raise ValueError(f'{self.arg}: the list of images is empty')
            for s in source:
                self._add(s, recursive, top=False)
        else:
            raise TypeError(
                f'{self.arg}: expected a path, folder, glob, array, tensor, '
                f'PIL image or a list of them, got {type(source).__name__}'
            )

    def _add_memory(self, x) -> None:
        self.items.append((f'image_{len(self.items)}', x))

    # ------------------------------------------------------------------
    @property
    def names(self) -> List[str]:
        """The names of all inputs, in order."""
        return [n for n, _ in self.items]

    def describe(self) -> str:
        """The source as given: a path / glob, or a type name."""
        return _describe(self.source)

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        """Yield ``(name, [H, W, 3] uint8 RGB)`` per readable input.

        Unreadable inputs go to ``on_error`` (and :attr:`errors`) and are
        skipped, or raise when ``on_error`` is None.
        """
        for i, (name, item) in enumerate(self.items):
            arg = item if is_path(item) else f'{self.arg}[{i}]'
            try:
                rgb = load_rgb(item, str(arg), self.bit_depth)
            except READ_ERRORS as e:
                if self.on_error is None:
                    raise
                self.errors.append((name, f'{type(e).__name__}: {e}'))
                self.on_error(name, e)
                continue
            yield name, rgb


def _describe(source) -> str:
    if is_path(source):
        return os.fspath(source)
    if isinstance(source, (list, tuple)):
        return '[' + ', '.join(_describe(s) for s in source) + ']'
    return type(source).__name__
