from .gfds_report_hook import GFDSBenchmarkHook
from .teacher_stats_hook import TeacherFeatureStatsHook
from .train_miou_hook import EpisodicTrainMIoUHook
from .visualization_hook import FewShotVisualizationHook

__all__ = [
    'FewShotVisualizationHook',
    'TeacherFeatureStatsHook',
    'GFDSBenchmarkHook',
    'EpisodicTrainMIoUHook',
]
