"""Export with NVIDIA TAO's deployable_v2.2 contract (``tools/export.py --contract
tao-v2.2``): the graph declares the contract's table, carries six sanitised nv::MSDA nodes,
runs in ONNX Runtime as in PyTorch, and a model that cannot meet it is refused.

The model is about the smallest that meets the contract: the head at TAO's sizes (900
queries, 600 carried, 256 channels, 11-D anchors, 6 decoders) with fewer aggregation groups
and points and a narrower FFN, on a ResNet-18 of 8 base channels at 64 x 32 pixels, built
and exported once."""

import inspect

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config

from mmsparse4d.deploy import (
    Sparse4DFrameGraph,
    TaoFrameGraph,
    export_tracking_graph,
    read_onnx_metadata,
    tao_example_inputs,
)
from mmsparse4d.deploy.names import TAO_CONTRACT as CONTRACT
from mmsparse4d.deploy.tao_contract import (
    GRAPH_INPUT_NAMES,
    INPUT_NAMES,
    INPUT_SPECS,
    OUTPUTS,
)
from mmsparse4d.deploy.tao_frame_graph import sanitise_locations
from mmsparse4d.ops.deformable_aggregation_onnx import onnxruntime_session
from mmsparse4d.structures import VX
from mmsparse4d.testing import (
    build_untrained_model,
    network_reductions,
    ring_cameras,
    rounding_tolerance,
)
from mmsparse4d.utils.input_error import InputError

CONFIG = 'configs/sparse4d/sparse4d_tao_r50_1408x512.py'  # converted TAO checkpoints'
IMAGE_SIZE = (64, 32)  # (W, H)
BACKBONE_CHANNELS = 8
CAMS = 3


def contract_model(repo_root, **head_overrides):
    """(cfg, model): TAO's head on a tiny backbone, initialised from a fixed seed."""
    cfg = Config.fromfile(str(repo_root / CONFIG))
    cfg.model.img_backbone = dict(
        type='mmdet.ResNet',
        depth=18,
        base_channels=BACKBONE_CHANNELS,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN'),
        style='pytorch',
    )
    cfg.model.img_neck.in_channels = [BACKBONE_CHANNELS * 2**i for i in range(4)]
    # Smaller where the contract leaves the size open: aggregation groups and key points
    # (weights_fc has groups * levels * points * 20 cameras outputs), the FFN's width.
    head = cfg.model.head
    head.deformable_model.update(num_groups=2, kps_generator=dict(num_learnable_pts=1))
    head.ffn.feedforward_channels = 256
    for step in cfg.test_dataloader.dataset.pipeline:
        if 'final_size' in step:
            step['final_size'] = IMAGE_SIZE
    torch.manual_seed(0)
    return cfg, build_untrained_model(cfg, **head_overrides).eval()


@pytest.fixture(scope='module')
def exported(repo_root, tmp_path_factory):
    cfg, model = contract_model(repo_root)
    head = model.head
    pairs = zip(head.operation_order, head.layers, strict=True)
    refinements = [layer for op, layer in pairs if op == 'refine']
    # The cache merge ranks the queries by the first stage's logits: exact ties (ranked by
    # position in both runtimes) so that a rounding difference cannot swap two queries.
    torch.nn.init.zeros_(refinements[0].cls_layers[-1].weight)
    # Untrained, the refinement predicts velocities of tens of m/s (displacements of ~1 m
    # over the 1/30 s), which the next decoder's anchor embedding reads: float32 rounding
    # then grows ~3x per decoder, past the bound of chained reductions. Scaled to below
    # 1 m/s, warehouse speeds (their output scale, the last module of ``layers``).
    with torch.no_grad():
        for layer in refinements:
            layer.layers[-1].scale[VX:] *= 0.01
    path = tmp_path_factory.mktemp('tao') / 'tao_v2_2.onnx'
    export_tracking_graph(model, cfg, path, contract=CONTRACT)  # traced at 20 cameras
    return model, path, onnx.load(str(path)), onnxruntime_session(path)


def frame_feeds(metadata: dict, model, cached: bool) -> dict[str, np.ndarray]:
    """TAO's inputs for ``CAMS`` ring cameras: a cache of the model's anchors moved a
    little (``cached``) with ``prev_exists`` 1, or the cold start the host feeds (zeros)."""
    width, height = IMAGE_SIZE
    feeds = tao_example_inputs(metadata, num_cams=CAMS)
    feeds['projection_mat'][0] = ring_cameras(CAMS, width, height)
    if cached:
        rng = np.random.default_rng(1)
        anchors = model.head.instance_bank.anchor.detach().numpy()[:600]
        feeds['input_cached_anchor'][0] = anchors + rng.normal(0, 0.1, anchors.shape)
        feeds['input_cached_feature'][0] = rng.standard_normal((600, 256))
        feeds['prev_exists'][:] = 1
        feeds['interval_mask'][:] = True
    return feeds


def eager(graph, feeds: dict, names=INPUT_NAMES) -> list[np.ndarray]:
    with torch.no_grad():
        outputs = graph(*(torch.from_numpy(feeds[name]) for name in names))
    return [value.numpy() for value in outputs]


def onnx_shape(value) -> list:
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def test_the_graph_takes_the_tabled_inputs_in_order():
    parameters = list(inspect.signature(TaoFrameGraph.forward).parameters)[1:]
    assert tuple(parameters) == INPUT_NAMES


def test_the_export_declares_the_contract(exported):
    model, path, proto, _ = exported
    assert [(o.domain, o.version) for o in proto.opset_import] == [('', 17), ('nv', 1)]
    # TAO's names and order; its timestamp reaches no node, so the exporter prunes it.
    assert INPUT_NAMES == (
        'img',
        'timestamp',
        'projection_mat',
        'image_wh',
        'input_cached_feature',
        'input_cached_anchor',
        'prev_exists',
        'interval_mask',
    )
    assert [i.name for i in proto.graph.input] == [n for n in INPUT_NAMES if n != 'timestamp']
    assert [o.name for o in proto.graph.output] == [
        'classification1',
        'classification2',
        *(f'prediction{stage}' for stage in range(1, 7)),
        'quality1',
        'quality2',
        'output_cached_feature',
        'output_cached_anchor',
    ]
    sizes = {'height': IMAGE_SIZE[1], 'width': IMAGE_SIZE[0], 'num_classes': 7}
    declared = {spec.name: spec for spec in (*INPUT_SPECS.values(), *OUTPUTS)}
    for value in (*proto.graph.input, *proto.graph.output):
        spec = declared[value.name]
        expected = [sizes.get(d, d) for d in spec.shape]  # batch_size, num_cams stay symbols
        assert onnx_shape(value) == expected, value.name
        dtype = onnx.helper.np_dtype_to_tensor_dtype(spec.numpy_dtype)
        assert value.type.tensor_type.elem_type == dtype, value.name
    shapes = {value.name: onnx_shape(value) for value in proto.graph.input}
    assert shapes['img'][:2] == ['batch_size', 'num_cams']
    assert shapes['input_cached_anchor'] == ['batch_size', 600, 11]
    assert shapes['interval_mask'] == ['batch_size', 1, 1]
    meta = read_onnx_metadata(path)
    assert meta['contract'] == CONTRACT and meta['input_names'] == list(GRAPH_INPUT_NAMES)
    assert meta['baked_time_interval'] == 0.033333  # TAO's spec value, in its config
    # The tracker runs our contract only, and says so.
    from mmsparse4d.apis.tracker import build_backend
    from mmsparse4d.utils.input_error import InputError

    with pytest.raises(InputError, match='exported with --contract tao-v2.2 .* without --contract'):
        build_backend('onnxruntime', None, path)


def test_six_sanitised_msda_nodes(exported):
    _, _, proto, _ = exported
    producer = {output: node for node in proto.graph.node for output in node.output}
    msda = [n for n in proto.graph.node if (n.domain, n.op_type) == ('nv', 'MSDA')]
    assert len(msda) == 6
    for node in msda:
        assert len(node.input) == 5 and len(node.output) == 1 and not node.attribute
        # The sampling locations: Where(And(And(Greater, Less), And(Greater, Less)), ., 0).
        where = producer[node.input[3]]
        assert where.op_type == 'Where'
        both = producer[where.input[0]]
        assert both.op_type == 'And'
        for axis in both.input:
            condition = producer[axis]
            assert condition.op_type == 'And'
            assert {producer[x].op_type for x in condition.input} == {'Greater', 'Less'}


def test_sanitising_keeps_only_locations_strictly_inside():
    nan, inf = float('nan'), float('inf')
    bad = [[nan, 0.5], [0.5, nan], [inf, 0.5], [0.5, -inf], [0.0, 0.5], [1.0, 0.5], [0.5, 1.1]]
    locations = torch.tensor([[0.25, 0.75], *bad])
    out = sanitise_locations(locations)
    assert torch.equal(out[0], locations[0])
    assert torch.equal(out[1:], torch.zeros(len(bad), 2))


@pytest.fixture(scope='module')
def frames(exported):
    """{'cache' | 'cold_start': (feeds, PyTorch's outputs)}, each frame run once."""
    model, path, _, _ = exported
    graph, metadata = TaoFrameGraph(model).eval(), read_onnx_metadata(path)
    runs = {}
    for name, cached in (('cache', True), ('cold_start', False)):
        feeds = frame_feeds(metadata, model, cached)
        runs[name] = feeds, eager(graph, feeds)
    return runs


@pytest.mark.parametrize('frame', ['cache', 'cold_start'])
def test_onnxruntime_equals_pytorch(exported, frames, frame):
    """Float32 rounding only: each output within the bound of the model's reductions,
    per column on the column's own scale (a velocity is the refinement's displacement
    over 1/30 s)."""
    model, _, _, session = exported
    feeds, expected = frames[frame]
    got = session.run(None, {name: feeds[name] for name in GRAPH_INPUT_NAMES})
    terms, depth = network_reductions(model)
    tolerance = rounding_tolerance(torch.float32, terms, depth=depth)
    for spec, value, reference in zip(OUTPUTS, got, expected, strict=True):
        scale = np.maximum(np.abs(reference).reshape(-1, reference.shape[-1]).max(0), 1.0)
        np.testing.assert_allclose(value / scale, reference / scale, **tolerance, err_msg=spec.name)


def test_with_a_valid_cache_it_computes_our_graph(exported, frames):
    """The same decoder loop: with a cache (prev_exists 1, interval_mask True) TAO's wiring
    gives our graph's outputs at the baked interval; at a cold start the current queries
    whatever interval_mask says."""
    model, _, _, _ = exported
    tao = TaoFrameGraph(model).eval()
    feeds, outputs = frames['cache']
    feeds = dict(feeds, time_interval=np.full(1, tao.time_interval, np.float32))
    graph = Sparse4DFrameGraph(model).eval()
    ours = dict(zip(graph.output_names, eager(graph, feeds, graph.input_names), strict=True))
    renamed = {'classification2': 'classification6', 'quality2': 'quality6'}
    for spec, value in zip(OUTPUTS, outputs, strict=True):
        np.testing.assert_array_equal(value, ours[renamed.get(spec.name, spec.name)], spec.name)
    cold, outputs = frames['cold_start']
    masked = dict(cold, interval_mask=np.ones_like(cold['interval_mask']))
    for spec, value, reference in zip(OUTPUTS, eager(tao, masked), outputs, strict=True):
        np.testing.assert_array_equal(value, reference, spec.name)


def test_a_model_with_two_decoders_is_refused(repo_root, tmp_path):
    cfg, model = contract_model(repo_root, num_decoder=2)
    with pytest.raises(InputError) as error:
        export_tracking_graph(model, cfg, tmp_path / 'two.onnx', contract=CONTRACT)
    message = str(error.value)
    assert message == (
        'the model does not meet contract tao-v2.2: num_decoder is 2 in the model, the '
        'contract needs 6'
    )
    assert not (tmp_path / 'two.onnx').exists()


def test_a_model_with_new_query_exclusion_is_refused(repo_root, tmp_path):
    cfg = Config.fromfile(str(repo_root / CONFIG))
    anchors = np.zeros((cfg.model.head.instance_bank.num_anchor, 11), np.float32)
    anchors[:, 7] = 1.0
    bank = dict(
        cfg.model.head.instance_bank,
        anchor=anchors,
        new_query_exclusion=dict(radius=1.0, min_confidence=0.2),
    )
    cfg, model = contract_model(repo_root, instance_bank=bank)
    with pytest.raises(InputError, match='new_query_exclusion is set in the model'):
        export_tracking_graph(model, cfg, tmp_path / 'exclusion.onnx', contract=CONTRACT)
    assert not (tmp_path / 'exclusion.onnx').exists()
