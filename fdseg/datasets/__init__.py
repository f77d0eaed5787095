from .few_shot_defect import FewShotDefectDataset, ProductSpec, SyntheticDefectDataset
from .folder_dataset import FolderFewShotDataset
from .gfds_dataset import GFDSDataset
from .image_folder import ImageFolderDataset
from .transforms import *  # noqa: F401,F403

__all__ = [
    'FewShotDefectDataset',
    'FolderFewShotDataset',
    'ProductSpec',
    'SyntheticDefectDataset',
    'ImageFolderDataset',
    'GFDSDataset',
]
