from .inference import FewShotInferencer, init_model, resolve_config
from .results import FewShotResult
from .sources import ImageSource

__all__ = [
    'FewShotInferencer',
    'FewShotResult',
    'ImageSource',
    'init_model',
    'resolve_config',
]
