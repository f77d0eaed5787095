"""Dataset helpers that are not datasets: the synthetic benchmark generator
(:mod:`.synthetic`) and the image conventions shared by the datasets
(:mod:`.images`)."""
