from .gfds_report_hook import GFDSBenchmarkHook
from .teacher_stats_hook import TeacherFeatureStatsHook
from .visualization_hook import FewShotVisualizationHook

__all__ = ['FewShotVisualizationHook', 'TeacherFeatureStatsHook', 'GFDSBenchmarkHook']
