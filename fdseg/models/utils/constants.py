"""Conventions shared by the models, written down once.

ImageNet statistics: in 0..255 for the data preprocessors (mmseg's
convention); the same values in 0..1 (``/ 255``; equal to the published
``(0.485, 0.456, 0.406)`` / ``(0.229, 0.224, 0.225)`` in float32) where a
model works on 0..1 images (the filter bank, SAM2's frame loader).
"""

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)
IMAGENET_MEAN_01 = tuple(v / 255 for v in IMAGENET_MEAN)
IMAGENET_STD_01 = tuple(v / 255 for v in IMAGENET_STD)
