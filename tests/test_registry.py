"""The registries: scope, parents, and every lazy-import location exists and imports."""

import importlib

import pytest
from mmdet3d import registry as mmdet3d_registry
from mmengine import registry as mmengine_registry
from mmengine.registry import DefaultScope

from mmsparse4d import registry
from mmsparse4d.registry import ALL_REGISTRIES

EXPECTED = {
    'MODELS',
    'DATASETS',
    'TRANSFORMS',
    'DATA_SAMPLERS',
    'METRICS',
    'EVALUATOR',
    'TASK_UTILS',
    'HOOKS',
    'VISUALIZERS',
    'VISBACKENDS',
    'RUNNERS',
    'RUNNER_CONSTRUCTORS',
    'LOOPS',
    'OPTIMIZERS',
    'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS',
    'PARAM_SCHEDULERS',
    'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS',
    'LOG_PROCESSORS',
    'FUNCTIONS',
}


def test_every_expected_registry_exists():
    assert EXPECTED <= set(ALL_REGISTRIES)


@pytest.mark.parametrize('name', sorted(ALL_REGISTRIES))
def test_registry_is_a_scoped_child_of_mmdet3d(name):
    child = ALL_REGISTRIES[name]
    assert child.scope == 'mmsparse4d'
    # mmdet3d has no FUNCTIONS registry (collate functions): that one hangs off mmengine's.
    parents = mmengine_registry if name == 'FUNCTIONS' else mmdet3d_registry
    assert child.parent is getattr(parents, name)


def test_the_collate_function_is_found_as_the_runner_looks_it_up():
    # mmengine's Runner.build_dataloader calls the root FUNCTIONS registry's get.
    from mmsparse4d.datasets.multiview_collate import multiview_collate

    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        found = mmengine_registry.FUNCTIONS.get('mmsparse4d.multiview_collate')
    assert found is multiview_collate


@pytest.mark.parametrize(
    'location',
    sorted({loc for reg in ALL_REGISTRIES.values() for loc in reg._locations}),
)
def test_every_location_imports(location):
    importlib.import_module(location)


def test_children_reach_mmdet_and_mmengine_components():
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        assert registry.MODELS.get('mmdet.ResNet').__name__ == 'ResNet'
        assert registry.MODELS.get('mmdet.FPN').__name__ == 'FPN'
        assert registry.OPTIM_WRAPPERS.get('OptimWrapper').__name__ == 'OptimWrapper'
        assert registry.HOOKS.get('WeightsOnlyCheckpointHook').__module__.startswith('mmsparse4d')
