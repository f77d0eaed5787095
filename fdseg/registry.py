"""fdseg registries.

Every registry is a child of the matching mmengine root, so mmengine's own
components (runners, loops, optimisers, hooks) stay reachable from configs
that use ``default_scope='fdseg'``, and foreign modules can be addressed with a
scope prefix (``type='mmseg.SomeModule'``). ``locations`` lets a registry
import its modules lazily the first time a config asks for one.
"""

from mmengine.registry import DATA_SAMPLERS as MMENGINE_DATA_SAMPLERS
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import EVALUATOR as MMENGINE_EVALUATOR
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import INFERENCERS as MMENGINE_INFERENCERS
from mmengine.registry import LOG_PROCESSORS as MMENGINE_LOG_PROCESSORS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import (
    OPTIM_WRAPPER_CONSTRUCTORS as MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
)
from mmengine.registry import OPTIM_WRAPPERS as MMENGINE_OPTIM_WRAPPERS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TASK_UTILS as MMENGINE_TASK_UTILS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import VISBACKENDS as MMENGINE_VISBACKENDS
from mmengine.registry import VISUALIZERS as MMENGINE_VISUALIZERS
from mmengine.registry import Registry

RUNNERS = Registry('runner', parent=MMENGINE_RUNNERS, locations=['fdseg.engine'])
LOOPS = Registry('loop', parent=MMENGINE_LOOPS, locations=['fdseg.engine'])
HOOKS = Registry('hook', parent=MMENGINE_HOOKS, locations=['fdseg.engine'])
LOG_PROCESSORS = Registry(
    'log processor', parent=MMENGINE_LOG_PROCESSORS, locations=['fdseg.engine']
)

DATASETS = Registry('dataset', parent=MMENGINE_DATASETS, locations=['fdseg.datasets'])
DATA_SAMPLERS = Registry(
    'data sampler', parent=MMENGINE_DATA_SAMPLERS, locations=['fdseg.datasets.samplers']
)
TRANSFORMS = Registry(
    'transform', parent=MMENGINE_TRANSFORMS, locations=['fdseg.datasets.transforms']
)

# Every nn.Module of fdseg (backbones, heads, refiners, segmentors, losses,
# data preprocessors) lives here.
MODELS = Registry('model', parent=MMENGINE_MODELS, locations=['fdseg.models'])
MODEL_WRAPPERS = Registry(
    'model wrapper', parent=MMENGINE_MODEL_WRAPPERS, locations=['fdseg.engine']
)
OPTIMIZERS = Registry(
    'optimizer', parent=MMENGINE_OPTIMIZERS, locations=['fdseg.engine']
)
OPTIM_WRAPPERS = Registry(
    'optim wrapper', parent=MMENGINE_OPTIM_WRAPPERS, locations=['fdseg.engine']
)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMENGINE_OPTIM_WRAPPER_CONSTRUCTORS,
    locations=['fdseg.engine'],
)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMENGINE_PARAM_SCHEDULERS, locations=['fdseg.engine']
)

METRICS = Registry('metric', parent=MMENGINE_METRICS, locations=['fdseg.evaluation'])
EVALUATOR = Registry(
    'evaluator', parent=MMENGINE_EVALUATOR, locations=['fdseg.evaluation']
)

TASK_UTILS = Registry(
    'task util', parent=MMENGINE_TASK_UTILS, locations=['fdseg.models']
)

VISUALIZERS = Registry(
    'visualizer', parent=MMENGINE_VISUALIZERS, locations=['fdseg.visualization']
)
VISBACKENDS = Registry(
    'vis_backend', parent=MMENGINE_VISBACKENDS, locations=['fdseg.visualization']
)

INFERENCERS = Registry(
    'inferencer', parent=MMENGINE_INFERENCERS, locations=['fdseg.apis']
)
