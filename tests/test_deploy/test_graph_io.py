"""The table of the frame graph's inputs and outputs agrees with the graph and its users."""

import inspect

import torch

from mmsparse4d.deploy import Sparse4DFrameGraph
from mmsparse4d.deploy.graph_io import (
    CACHE_INPUTS,
    INPUT_NAMES,
    INPUT_SPECS,
    cache_feeds,
    dynamic_axes,
    input_shapes,
    output_names,
)
from mmsparse4d.testing import build_untrained_model

METADATA = {
    'image_size': [144, 256],
    'num_temp_instances': 6,
    'embed_dims': 8,
    'num_anchor': 10,
    'num_classes': 3,
}


def test_the_graph_takes_the_tabled_inputs_in_order():
    parameters = list(inspect.signature(Sparse4DFrameGraph.forward).parameters)[1:]
    assert tuple(parameters) == INPUT_NAMES


def test_only_batch_and_cameras_are_dynamic():
    axes = dynamic_axes(INPUT_NAMES)
    assert axes['img'] == {0: 'batch', 1: 'num_cams'}
    assert axes['input_cached_feature'] == {0: 'batch'}
    shapes = input_shapes(METADATA, batch=2, num_cams=3)
    assert shapes['img'] == (2, 3, 3, 144, 256)
    assert shapes['input_cached_anchor'] == (2, 6, 11)
    assert shapes['interval_mask'] == (2, 1, 1)


def test_cache_feeds_follow_the_table_with_and_without_a_cache():
    state = {
        'temp_valid': torch.tensor([True, False]),
        'time_interval': torch.tensor([0.1, 1 / 30], dtype=torch.float64),
        'cached_feature': None,
        'cached_anchor': None,
    }
    shapes = input_shapes(METADATA, batch=2, num_cams=1)
    for cached in (False, True):
        if cached:
            state['cached_feature'] = torch.ones(2, 6, 8, dtype=torch.float64)
            state['cached_anchor'] = torch.ones(2, 6, 11)
            state['cached_confidence'] = torch.full((2, 6), 0.5)
        feeds = cache_feeds(state, 6, 8)
        assert tuple(feeds) == CACHE_INPUTS
        for name, value in feeds.items():
            assert value.shape == shapes[name] and value.dtype == INPUT_SPECS[name].dtype, name
        assert feeds['input_cached_feature'].sum() == (2 * 6 * 8 if cached else 0)


def test_output_names_per_stage_then_the_cache_then_reid():
    assert output_names(2, True, ('reid_feats',)) == (
        'classification1',
        'classification2',
        'prediction1',
        'prediction2',
        'quality1',
        'quality2',
        'output_cached_feature',
        'output_cached_anchor',
        'reid_feats',
    )
    assert output_names(2, False, ())[:3] == ('classification2', 'prediction2', 'quality2')


def test_the_cache_confidences_are_an_input_only_with_new_query_exclusion():
    exclusion = {
        'model.head.instance_bank.new_query_exclusion': dict(radius=1.0, min_confidence=0.2)
    }
    assert (
        'input_cached_confidence'
        in Sparse4DFrameGraph(build_untrained_model(cfg_options=exclusion)).input_names
    )
    assert 'input_cached_confidence' not in Sparse4DFrameGraph(build_untrained_model()).input_names
