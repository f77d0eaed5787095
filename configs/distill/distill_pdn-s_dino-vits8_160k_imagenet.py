# GFDS FM-s: the small PDN student (c=128, paper Table 3) distilled from
# DINO ViT-S/8, same recipe as FM-l (paper Sec. 6.1.2).
_base_ = ['./distill_pdn-l_dino-vits8_160k_imagenet.py']
model = dict(student=dict(size='small'))
