from .episode_data_sample import EpisodeDataSample

__all__ = ['EpisodeDataSample']
