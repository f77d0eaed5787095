from .teacher_stats_hook import TeacherFeatureStatsHook
from .visualization_hook import FewShotVisualizationHook

__all__ = ['FewShotVisualizationHook', 'TeacherFeatureStatsHook']
