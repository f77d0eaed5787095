from .base_refiner import BaseRefiner
from .fastsam_refiner import FastSAMRefiner
from .fusion import MaskFusion
from .sam2_prompt_refiner import SAM2PromptRefiner

__all__ = ['BaseRefiner', 'FastSAMRefiner', 'MaskFusion', 'SAM2PromptRefiner']
