# The GFDS episode pipelines shared by every episodic dataset config: images
# and masks resized to 256x256 (bilinear, as the official loader), masks
# thresholded after resizing with each product's threshold (30 for GFDS),
# random flips and 90-degree rotations for meta-learning (Sec. 6.1.1).
img_scale = (256, 256)

test_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale),
    dict(type='BinarizeEpisodeMasks'),
    dict(type='PackEpisodeInputs'),
]
train_pipeline = [
    dict(type='LoadEpisode'),
    dict(type='ResizeEpisode', scale=img_scale),
    dict(type='BinarizeEpisodeMasks'),
    dict(type='RandomFlipEpisode', prob=0.5),
    dict(type='RandomRotate90Episode', prob=0.5),
    dict(type='PackEpisodeInputs'),
]
