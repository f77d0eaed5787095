from .base_refiner import BaseRefiner

__all__ = ['BaseRefiner']
