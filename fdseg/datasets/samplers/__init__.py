"""Samplers: mmengine's DefaultSampler / InfiniteSampler, and EpisodeSampler.

Evaluation episodes are fixed at dataset construction (a pure function of
the seed and the query), so evaluation uses ``DefaultSampler``. Episodic
training draws new supports every epoch and uses :class:`EpisodeSampler`,
which tells the dataset the epoch of every index.
"""

from .episode_sampler import EpisodeSampler

__all__ = ['EpisodeSampler']
