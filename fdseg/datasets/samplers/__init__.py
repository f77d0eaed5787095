"""Samplers: fdseg uses mmengine's DefaultSampler / InfiniteSampler.

Episodes are fixed at dataset construction (a pure function of the seed and
the query), so no episode-specific sampler is needed for evaluation.
"""
