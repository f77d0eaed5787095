"""The sampler of episodic training: ``(epoch, index)`` pairs.

One training *epoch* is one pass over the training subset's query images
(every image of every training category is the query once), each with
supports drawn afresh for that epoch. The draw is a pure function of
``(dataset seed, epoch, query)``
(:meth:`fdseg.datasets.FewShotDefectDataset.episode`), so the dataset must
know the epoch of every index it serves, also in dataloader workers that
outlive an epoch (``persistent_workers``): this sampler hands it over with
the index.
"""

from typing import Iterator, Tuple

from mmengine.dataset import DefaultSampler

from fdseg.registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class EpisodeSampler(DefaultSampler):
    """:class:`mmengine.dataset.DefaultSampler` yielding ``(epoch, index)``.

    Order, sharding and padding are the parent's: with ``shuffle=True`` the
    episode order is a permutation seeded by ``seed + epoch``; rank ``r`` of
    ``w`` takes positions ``r, r + w, ...`` of it (padded by repetition to a
    multiple of ``w`` when ``round_up``). So ``w`` processes with batch ``b``
    see, step by step, the same ``w * b`` episodes as one process with batch
    ``w * b`` (what the DDP test checks). ``DistSamplerSeedHook`` (in
    ``default_hooks``) sets the epoch, also after ``--resume``.

    Args:
        dataset: A ``support_draw='per_epoch'`` dataset.
        shuffle (bool): Shuffle the episodes every epoch.
        seed (int, optional): Shuffle seed; the runner's seed (``randomness``)
            when None.
        round_up (bool): Pad to a multiple of the world size.
    """

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        """``(epoch, index)`` for this rank's share of the epoch."""
        epoch = int(self.epoch)
        return ((epoch, int(i)) for i in super().__iter__())
