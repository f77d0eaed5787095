"""Unlabelled image-folder dataset for feature distillation (GFDS Sec. 5.1.1).

GFDS distils its student on "the ImageNet dataset" (Sec. 6.1.2); only the
images matter, so this dataset lists every image under an ImageNet-style
train folder (``train/<wnid>/<name>.JPEG``) recursively, at any depth.
"""

import os
import os.path as osp
from typing import List, Optional, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from fdseg.registry import DATASETS

from .transforms.conventions import IMG_EXTENSIONS


def list_images(
    root: str, extensions: Sequence[str] = IMG_EXTENSIONS, follow_links: bool = True
) -> List[str]:
    """Recursively list image files under ``root``.

    Args:
        root (str): Folder to walk.
        extensions (Sequence[str]): Accepted suffixes, compared
            case-insensitively (ImageNet uses ``.JPEG``).
        follow_links (bool): Follow symlinked folders (common for datasets
            linked into ``data/``). Defaults to True.

    Returns:
        list[str]: Paths relative to ``root``, sorted so that every rank and
        every run sees the same order (the samplers index into it).
    """
    exts = tuple(e.lower() for e in extensions)
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_links):
        dirnames.sort()
        rel = osp.relpath(dirpath, root)
        for name in filenames:
            if name.lower().endswith(exts) and not name.startswith('.'):
                found.append(name if rel == '.' else osp.join(rel, name))
    found.sort()
    return found


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image of a folder tree, without labels.

    Each item is ``dict(img_path=...)`` passed through the pipeline (see
    :mod:`fdseg.datasets.transforms.distill_transforms`).

    Args:
        data_root (str): Dataset root, e.g. ``'data/imagenet'``.
        data_prefix (dict): ``img_path`` sub-folder of ``data_root`` holding
            the images, e.g. ``dict(img_path='train')``.
        ann_file (str): Optional list file (relative to ``data_root``) with
            one image path per line, relative to the image folder; anything
            after the first whitespace (an ImageNet class index as in
            mmpretrain's ``meta/train.txt``) is ignored. Listing 1.28M
            ImageNet files takes a while on slow disks; a list file skips
            the walk. Defaults to ``''`` (walk the folder).
        extensions (Sequence[str]): Image suffixes (case-insensitive).
        follow_links (bool): Follow symlinked sub-folders while walking.
        max_images (int, optional): Keep only the first N images of the
            sorted list (quick experiments). Defaults to None (all).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``serialize_data``, ``lazy_init``, ...).

    Raises:
        FileNotFoundError: The image folder or the list file is missing.
        ValueError: No image was found (the message names the folder and
            the accepted suffixes).
    """

    METAINFO = dict(task='feature distillation (unlabelled images)')

    def __init__(
        self,
        data_root: str = '',
        data_prefix: dict = dict(img_path=''),
        ann_file: str = '',
        extensions: Sequence[str] = IMG_EXTENSIONS,
        follow_links: bool = True,
        max_images: Optional[int] = None,
        **kwargs,
    ) -> None:
        self.extensions = tuple(extensions)
        self.follow_links = follow_links
        self.max_images = max_images
        super().__init__(
            ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, **kwargs
        )

    @property
    def img_dir(self) -> str:
        """str: The folder holding the images (``data_root`` + prefix)."""
        return self.data_prefix.get('img_path', '') or self.data_root

    def load_data_list(self) -> List[dict]:
        """List the images.

        Returns:
            list[dict]: ``dict(img_path=<absolute or root-joined path>)``.
        """
        img_dir = self.img_dir
        if not img_dir or not osp.isdir(img_dir):
            raise FileNotFoundError(
                f'image folder {img_dir!r} does not exist (data_root='
                f'{self.data_root!r}, data_prefix={self.data_prefix!r}); '
                'point it at an ImageNet-style train folder such as '
                'data/imagenet/train'
            )
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(
                    f'image list file {self.ann_file!r} does not exist'
                )
            with open(self.ann_file) as f:
                rel_paths = [ln.split()[0] for ln in f if ln.strip()]
            source = f'list file {self.ann_file}'
        else:
            rel_paths = list_images(img_dir, self.extensions, self.follow_links)
            source = f'folder {img_dir}'
        if not rel_paths:
            raise ValueError(
                f'no images found in {source} (recursive; accepted suffixes '
                f'{", ".join(self.extensions)}, case-insensitive)'
            )
        if self.max_images is not None:
            rel_paths = rel_paths[: self.max_images]
        print_log(
            f'ImageFolderDataset: {len(rel_paths)} images from {source}',
            logger='current',
        )
        return [dict(img_path=osp.join(img_dir, p)) for p in rel_paths]


__all__ = ['ImageFolderDataset', 'list_images', 'IMG_EXTENSIONS']
