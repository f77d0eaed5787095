from .filter_bank import FilterBank
from .pdn import PDNStudent
from .resnet import ResNetLayer
from .resnet_bottlenecks import ResNetBottlenecks
from .vit import DINOv2ViT, DINOViT

__all__ = [
    'FilterBank',
    'PDNStudent',
    'ResNetLayer',
    'ResNetBottlenecks',
    'DINOViT',
    'DINOv2ViT',
]
