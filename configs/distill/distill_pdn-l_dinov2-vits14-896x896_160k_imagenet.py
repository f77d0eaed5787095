# Fig. 9 teacher: DINOv2 ViT-S/14 at 896x896 (64x64x384 tokens), FM-l
# student at 256 (paper Sec. 7.1.2). The teacher image is resized from the
# original to 896 by the pipeline.
_base_ = [
    '../_base_/models/distill_pdn-l_dinov2-vits14.py',
    '../_base_/datasets/imagenet_distill.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k_adam.py',
]
teacher_size = 896
train_pipeline = [
    dict(type='LoadDistillImage'),
    dict(type='DistillRandomGrayscale', prob=0.1),
    dict(
        type='ResizeDistill',
        student_size=256,
        teacher_size=teacher_size,
        interpolation='bilinear',
    ),
    dict(type='PackDistillInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_cfg = None
test_cfg = None
