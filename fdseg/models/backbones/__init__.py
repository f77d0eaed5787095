from .filter_bank import FilterBank
from .pdn import PDNStudent
from .resnet import ResNetLayer
from .vit import DINOv2ViT, DINOViT

__all__ = ['FilterBank', 'PDNStudent', 'ResNetLayer', 'DINOViT', 'DINOv2ViT']
