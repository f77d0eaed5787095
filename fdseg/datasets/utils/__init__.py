"""Dataset helpers that are not datasets: the synthetic benchmark generator
(:mod:`.synthetic`). Image conventions (suffixes, readers) are in
:mod:`fdseg.datasets.transforms.conventions`."""
