from .distill_data_preprocessor import DistillDataPreprocessor
from .episode_data_preprocessor import EpisodeDataPreprocessor

__all__ = ['EpisodeDataPreprocessor', 'DistillDataPreprocessor']
