from .episode_transforms import (BinarizeEpisodeMasks, LoadEpisode,
                                 PackEpisodeInputs, RandomFlipEpisode,
                                 RandomRotate90Episode, ResizeEpisode,
                                 episode_pipeline, read_image, read_mask)

__all__ = [
    'LoadEpisode', 'ResizeEpisode', 'BinarizeEpisodeMasks',
    'RandomFlipEpisode', 'RandomRotate90Episode', 'PackEpisodeInputs',
    'episode_pipeline', 'read_image', 'read_mask'
]
