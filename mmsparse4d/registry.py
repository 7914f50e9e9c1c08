"""The registries of mmsparse4d: children of mmdet3d's with scope ``'mmsparse4d'``.

Every registry names the packages that hold its classes (``locations``), so that building
from a config imports them on first use, as mmdet3d does. ``tests/test_registry.py``
imports every location, so a location that does not exist fails CI.
"""

from mmdet3d.registry import DATA_SAMPLERS as MMDET3D_DATA_SAMPLERS
from mmdet3d.registry import DATASETS as MMDET3D_DATASETS
from mmdet3d.registry import EVALUATOR as MMDET3D_EVALUATOR
from mmdet3d.registry import HOOKS as MMDET3D_HOOKS
from mmdet3d.registry import LOG_PROCESSORS as MMDET3D_LOG_PROCESSORS
from mmdet3d.registry import LOOPS as MMDET3D_LOOPS
from mmdet3d.registry import METRICS as MMDET3D_METRICS
from mmdet3d.registry import MODEL_WRAPPERS as MMDET3D_MODEL_WRAPPERS
from mmdet3d.registry import MODELS as MMDET3D_MODELS
from mmdet3d.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMDET3D_OPTIM_WRAPPER_CONSTRUCTORS
from mmdet3d.registry import OPTIM_WRAPPERS as MMDET3D_OPTIM_WRAPPERS
from mmdet3d.registry import OPTIMIZERS as MMDET3D_OPTIMIZERS
from mmdet3d.registry import PARAM_SCHEDULERS as MMDET3D_PARAM_SCHEDULERS
from mmdet3d.registry import RUNNER_CONSTRUCTORS as MMDET3D_RUNNER_CONSTRUCTORS
from mmdet3d.registry import RUNNERS as MMDET3D_RUNNERS
from mmdet3d.registry import TASK_UTILS as MMDET3D_TASK_UTILS
from mmdet3d.registry import TRANSFORMS as MMDET3D_TRANSFORMS
from mmdet3d.registry import VISBACKENDS as MMDET3D_VISBACKENDS
from mmdet3d.registry import VISUALIZERS as MMDET3D_VISUALIZERS
from mmdet3d.registry import WEIGHT_INITIALIZERS as MMDET3D_WEIGHT_INITIALIZERS
from mmengine.registry import FUNCTIONS as MMENGINE_FUNCTIONS
from mmengine.registry import Registry

SCOPE = 'mmsparse4d'

_ENGINE = ['mmsparse4d.engine.hooks', 'mmsparse4d.engine.loops', 'mmsparse4d.engine.optimizers']
_MODELS = ['mmsparse4d.models', 'mmsparse4d.ops']
# The metric classes' own package: mmsparse4d.evaluation stays importable without mmengine.
_METRICS = ['mmsparse4d.evaluation.metrics']

RUNNERS = Registry('runner', parent=MMDET3D_RUNNERS, scope=SCOPE, locations=_ENGINE)
RUNNER_CONSTRUCTORS = Registry(
    'runner constructor', parent=MMDET3D_RUNNER_CONSTRUCTORS, scope=SCOPE, locations=_ENGINE
)
LOOPS = Registry('loop', parent=MMDET3D_LOOPS, scope=SCOPE, locations=_ENGINE)
HOOKS = Registry('hook', parent=MMDET3D_HOOKS, scope=SCOPE, locations=['mmsparse4d.engine.hooks'])

# The modules that register (mmsparse4d.datasets itself loads them lazily).
DATASETS = Registry(
    'dataset',
    parent=MMDET3D_DATASETS,
    scope=SCOPE,
    locations=['mmsparse4d.datasets.ovpkl_dataset'],
)
DATA_SAMPLERS = Registry(
    'data sampler',
    parent=MMDET3D_DATA_SAMPLERS,
    scope=SCOPE,
    locations=['mmsparse4d.datasets.samplers'],
)
# Collate functions (mmdet3d has no FUNCTIONS registry of its own); configs name them with
# the scope, 'mmsparse4d.multiview_collate', because mmengine's Runner looks them up in the
# root registry.
FUNCTIONS = Registry(
    'function',
    parent=MMENGINE_FUNCTIONS,
    scope=SCOPE,
    locations=['mmsparse4d.datasets.multiview_collate'],
)
TRANSFORMS = Registry(
    'transform',
    parent=MMDET3D_TRANSFORMS,
    scope=SCOPE,
    locations=['mmsparse4d.datasets.transforms'],
)

MODELS = Registry('model', parent=MMDET3D_MODELS, scope=SCOPE, locations=_MODELS)
MODEL_WRAPPERS = Registry(
    'model_wrapper', parent=MMDET3D_MODEL_WRAPPERS, scope=SCOPE, locations=_MODELS
)
WEIGHT_INITIALIZERS = Registry(
    'weight initializer', parent=MMDET3D_WEIGHT_INITIALIZERS, scope=SCOPE, locations=_MODELS
)
TASK_UTILS = Registry(
    'task util',
    parent=MMDET3D_TASK_UTILS,
    scope=SCOPE,
    locations=['mmsparse4d.models.task_modules'],
)

OPTIMIZERS = Registry('optimizer', parent=MMDET3D_OPTIMIZERS, scope=SCOPE, locations=_ENGINE)
OPTIM_WRAPPERS = Registry(
    'optim_wrapper', parent=MMDET3D_OPTIM_WRAPPERS, scope=SCOPE, locations=_ENGINE
)
OPTIM_WRAPPER_CONSTRUCTORS = Registry(
    'optimizer wrapper constructor',
    parent=MMDET3D_OPTIM_WRAPPER_CONSTRUCTORS,
    scope=SCOPE,
    locations=_ENGINE,
)
PARAM_SCHEDULERS = Registry(
    'parameter scheduler', parent=MMDET3D_PARAM_SCHEDULERS, scope=SCOPE, locations=_ENGINE
)

METRICS = Registry('metric', parent=MMDET3D_METRICS, scope=SCOPE, locations=_METRICS)
EVALUATOR = Registry('evaluator', parent=MMDET3D_EVALUATOR, scope=SCOPE, locations=_METRICS)

VISUALIZERS = Registry(
    'visualizer', parent=MMDET3D_VISUALIZERS, scope=SCOPE, locations=['mmsparse4d.visualization']
)
VISBACKENDS = Registry(
    'vis_backend', parent=MMDET3D_VISBACKENDS, scope=SCOPE, locations=['mmsparse4d.visualization']
)
LOG_PROCESSORS = Registry(
    'log_processor', parent=MMDET3D_LOG_PROCESSORS, scope=SCOPE, locations=_ENGINE
)

#: Every registry of this module by name, for tests and tools.
ALL_REGISTRIES = {
    name: value
    for name, value in dict(globals()).items()
    if isinstance(value, Registry) and value.scope == SCOPE
}
