from .few_shot_defect import FewShotDefectDataset, ProductSpec, SyntheticDefectDataset
from .gfds_dataset import GFDSDataset
from .image_folder import ImageFolderDataset
from .samplers import EpisodeSampler
from .transforms import *  # noqa: F401,F403

__all__ = [
    'FewShotDefectDataset',
    'ProductSpec',
    'SyntheticDefectDataset',
    'ImageFolderDataset',
    'GFDSDataset',
    'EpisodeSampler',
]
