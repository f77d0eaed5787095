from .distill_transforms import (
    DistillRandomFlip,
    DistillRandomGrayscale,
    LoadDistillImage,
    PackDistillInputs,
    RandomScaleAspectCrop,
    ResizeDistill,
)
from .episode_transforms import (
    BinarizeEpisodeMasks,
    LoadEpisode,
    PackEpisodeInputs,
    RandomFlipEpisode,
    RandomRotate90Episode,
    ResizeEpisode,
    episode_pipeline,
    read_image,
    read_mask,
)

__all__ = [
    'LoadEpisode',
    'ResizeEpisode',
    'BinarizeEpisodeMasks',
    'RandomFlipEpisode',
    'RandomRotate90Episode',
    'PackEpisodeInputs',
    'episode_pipeline',
    'read_image',
    'read_mask',
    'LoadDistillImage',
    'DistillRandomGrayscale',
    'DistillRandomFlip',
    'RandomScaleAspectCrop',
    'ResizeDistill',
    'PackDistillInputs',
]
