from .filter_bank import FilterBank
from .pdn import PDNStudent
from .resnet import ResNetLayer
from .resnet_bottlenecks import ResNetBottlenecks
from .resnet_deep_stem import ResNetDeepStem
from .vit import DINOv2ViT, DINOViT

__all__ = [
    'FilterBank',
    'PDNStudent',
    'ResNetLayer',
    'ResNetBottlenecks',
    'ResNetDeepStem',
    'DINOViT',
    'DINOv2ViT',
]
