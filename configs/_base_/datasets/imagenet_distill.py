# ImageNet train images for feature distillation (paper Sec. 5.1.1, 6.1.2).
# Labels are not used: every image under data/imagenet/train (any depth) is a
# sample. One image gives both inputs, each resized from the original: the
# student's 256x256 and the teacher's 512x512 (896 for DINOv2 ViT-S/14), as in
# EfficientAD's pretraining.py (its RandomGrayscale(0.1), shared by both
# inputs, is kept; the GFDS paper names no augmentation).
dataset_type = 'ImageFolderDataset'
data_root = 'data/imagenet'
student_size = 256
teacher_size = 512

train_pipeline = [
    dict(type='LoadDistillImage'),
    dict(type='DistillRandomGrayscale', prob=0.1),
    dict(
        type='ResizeDistill',
        student_size=student_size,
        teacher_size=teacher_size,
        interpolation='bilinear',
    ),
    dict(type='PackDistillInputs'),
]

# batch_size is per process: the paper's 12 is one GPU. With N GPUs, use
# batch_size=12 // N to keep the paper's total batch.
train_dataloader = dict(
    batch_size=12,
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='train'),
        # Optional list file (one relative path per line) to skip walking
        # 1.28M files, e.g. mmpretrain's 'meta/train.txt'.
        ann_file='',
        pipeline=train_pipeline,
    ),
)
