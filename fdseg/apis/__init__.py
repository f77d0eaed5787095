from .inference import FewShotInferencer, init_model

__all__ = ['FewShotInferencer', 'init_model']
