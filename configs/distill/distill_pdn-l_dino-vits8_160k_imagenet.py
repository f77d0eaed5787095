# GFDS FM-l: PDN student (c=256) distilled from DINO ViT-S/8 on ImageNet
# (paper Sec. 5.1.1, 6.1.2): teacher 512 / student 256, l2 loss on the
# 64x64x384 maps, Adam lr 1e-4 wd 1e-5, batch 12, 160k iterations.
# Images: data/imagenet/train/<wnid>/*.JPEG; weights: dino_deitsmall8_pretrain.pth
# in the fdseg checkpoint dir (see fdseg/utils/checkpoints.py).
#
#   CFG=configs/distill/distill_pdn-l_dino-vits8_160k_imagenet.py
#   python tools/train.py $CFG [--amp] [--resume]
#   bash tools/dist_train.sh $CFG 4 \
#       --cfg-options train_dataloader.batch_size=3  # 4 GPUs x 3 = 12
#   python tools/analysis_tools/plot_distill_loss.py \
#       work_dirs/distill_pdn-l_dino-vits8_160k_imagenet --out loss.png
_base_ = [
    '../_base_/models/distill_pdn-l_dino-vits8.py',
    '../_base_/datasets/imagenet_distill.py',
    '../_base_/default_runtime.py',
    '../_base_/schedules/schedule_160k_adam.py',
]
# Training only: no validation or test loop.
val_cfg = None
test_cfg = None
