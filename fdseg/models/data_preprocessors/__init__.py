from .episode_data_preprocessor import EpisodeDataPreprocessor

__all__ = ['EpisodeDataPreprocessor']
