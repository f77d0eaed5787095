from .local_visualizer import FewShotSegVisualizer, overlay_mask

__all__ = ['FewShotSegVisualizer', 'overlay_mask']
