from .masked_average_head import MaskedAverageHead

__all__ = ['MaskedAverageHead']
