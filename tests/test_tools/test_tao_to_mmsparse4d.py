"""tools/model_converters/tao_to_mmsparse4d.py (mmsparse4d/engine/tao_checkpoint.py): TAO's
checkpoint layout, as TAO's own model lists it (tests/data/tao_parity/tao_keys.json), into the
models of the TAO configs, every weight placed and every place filled; the prefix variants
and HorizonRobotics' layout; the refusals, in one line naming the key and both shapes."""

import json
from collections import defaultdict
from functools import cache

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import nn

from mmsparse4d.datasets.aicity import canonical_class_name
from mmsparse4d.engine.checkpoint_settings import ANCHOR_KEY, load_fitting_checkpoint
from mmsparse4d.engine.tao_checkpoint import (
    build_target_model,
    convert_state_dict,
    split_tao_state,
    tao_to_mmsparse4d,
)
from mmsparse4d.models.layers import DEFAULT_FIXED_POINTS
from mmsparse4d.models.utils import pack_feature_maps
from mmsparse4d.registry import MODELS
from mmsparse4d.utils.input_error import InputError
from tests.conftest import REPO_ROOT, run_repo_tool

DATA = REPO_ROOT / 'tests/data/tao_parity'
KEYS = json.loads((DATA / 'tao_keys.json').read_text())
FIXTURE = DATA / 'fixture.pt'  # TAO's head run by tools/dev/make_tao_parity_fixture.py
# The TAO spec's classes, which the key listing was built with (4 classifier rows).
SPEC_CLASSES = tuple(canonical_class_name(name) for name in KEYS['config']['classes'])
CONFIGS = {
    ('resnet_101', True): 'sparse4d_tao_r101_1408x512.py',
    ('resnet_101', False): 'sparse4d_tao_r101_1408x512_nocamembed.py',
    ('resnet_50', True): 'sparse4d_tao_r50_1408x512.py',
    ('resnet_50', False): 'sparse4d_tao_r50_1408x512_nocamembed.py',
}
ATTENTION_LAYERS = 10  # 5 temporal + 5 self-attention layers of the 6 decoders
KEY_POINT_SETS = 6  # one per decoder's aggregation


def tao_shapes(backbone: str, camera_embed: bool) -> dict[str, tuple[int, ...]]:
    """Every key and shape of TAO's Lightning checkpoint of this variant."""
    shapes = {key: tuple(shape) for key, shape in KEYS['base']}
    variant = f'{backbone}/use_camera_embed={str(camera_embed).lower()}'
    if variant != KEYS['base_variant']:
        change = KEYS['variants'][variant]
        for key in change['removed']:
            del shapes[key]
        shapes.update((key, tuple(shape)) for key, shape in change['added'])
        shapes.update((key, tuple(shape)) for key, shape in change['reshaped'])
    return shapes


def config(backbone: str, camera_embed: bool, classes=SPEC_CLASSES, **deformable) -> Config:
    cfg = Config.fromfile(str(REPO_ROOT / 'configs/sparse4d' / CONFIGS[backbone, camera_embed]))
    cfg.class_names = classes
    cfg.model.head.refine_layer.num_cls = cfg.model.head.sampler.num_classes = len(classes)
    cfg.model.head.deformable_model.update(deformable)
    return cfg


@cache
def target_model(backbone, camera_embed, classes=SPEC_CLASSES, max_num_cams=20, device='cpu'):
    """The config's model; on the meta device it has keys and shapes and no memory."""
    with torch.device(device):
        return build_target_model(
            config(backbone, camera_embed, classes, max_num_cams=max_num_cams)
        )


def tao_state(backbone: str, camera_embed: bool) -> dict[str, torch.Tensor]:
    """TAO's weights, each one random number broadcast to its shape: every tensor is told
    apart by its storage, without allocating the model twice. The criterion holds the
    model's instance bank."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in tao_shapes(backbone, camera_embed).items():
        if key in KEYS['criterion_keys']:
            state[key] = state['model.head.' + key.removeprefix('criterion.')]
        else:
            state[key] = torch.rand((), generator=generator).expand(shape)
    return state


def compact_checkpoint(path, backbone='resnet_50', camera_embed=True, anchors=True, **extra):
    """A TAO Lightning file of the variant's keys and shapes, every weight one number
    broadcast (a few kB); real anchors."""
    state = {
        key: torch.full((), 0.5).expand(shape)
        for key, shape in tao_shapes(backbone, camera_embed).items()
    }
    state['model.head.instance_bank.anchor'] = torch.rand(900, 11)
    state['criterion.instance_bank.anchor'] = state['model.head.instance_bank.anchor']
    if not anchors:
        del state['model.head.instance_bank.anchor'], state['criterion.instance_bank.anchor']
    torch.save({'state_dict': state, 'epoch': 4, 'global_step': 1000, **extra}, path)
    return state


# TAO key -> our key, written from the two modules' structures (not the converter's rules).
RENAMED = {
    'model.img_backbone.layer3.5.bn2.running_var': 'img_backbone.layer3.5.bn2.running_var',
    'model.img_neck.fpn_convs.3.conv.weight': 'img_neck.fpn_convs.3.conv.weight',
    'model.head.instance_bank.anchor': 'head.instance_bank.anchor',
    'model.head.anchor_encoder.vel_fc.11.bias': 'head.anchor_encoder.vel_fc.11.bias',
    'model.head.layers.0.weights_fc.weight': 'head.layers.0.weights_fc.weight',
    'model.head.layers.1.layers.0.0.weight': 'head.layers.1.layers.0.weight',
    'model.head.layers.1.layers.1.bias': 'head.layers.1.layers.3.bias',
    'model.head.layers.2.weight': 'head.layers.2.weight',
    'model.head.layers.3.layers.9.weight': 'head.layers.3.layers.0.9.weight',
    'model.head.layers.3.layers.10.weight': 'head.layers.3.layers.1.weight',
    'model.head.layers.3.layers.11.scale': 'head.layers.3.layers.2.scale',
    'model.head.layers.3.cls_layers.5.bias': 'head.layers.3.cls_layers.0.5.bias',
    'model.head.layers.3.cls_layers.6.weight': 'head.layers.3.cls_layers.1.weight',
    'model.head.layers.38.quality_layers.6.bias': 'head.layers.38.quality_layers.1.bias',
    'model.head.layers.4.attn.in_proj_weight': 'head.layers.4.attention.in_proj_weight',
    'model.head.layers.5.attn.out_proj.bias': 'head.layers.5.attention.out_proj.bias',
    'model.head.fc_before.weight': 'head.layers.33.fc_before.weight',
    'model.head.fc_after.weight': 'head.layers.4.fc_after.weight',
    'model.depth_branch.depth_layers.2.bias': 'depth_branch.depth_layers.2.bias',
}


@pytest.mark.parametrize('backbone', ['resnet_101', 'resnet_50'])
@pytest.mark.parametrize('camera_embed', [True, False], ids=['camera_embed', 'no_camera_embed'])
def test_every_tao_weight_lands_and_every_place_is_filled(backbone, camera_embed):
    state = tao_state(backbone, camera_embed)
    with torch.device('meta'):  # keys and shapes, no memory; the weights are assigned
        model = build_target_model(config(backbone, camera_embed))
    conversion = convert_state_dict(split_tao_state(state), model)
    model.load_state_dict(conversion.state, strict=True, assign=True)

    # By identity: which of TAO's tensors each of our weights is (float32 stays the tensor).
    tao_of = {value.data_ptr(): key for key, value in state.items() if key.startswith('model.')}
    places = defaultdict(list)
    for ours, value in conversion.state.items():
        if ours not in conversion.filled:
            places[tao_of[value.data_ptr()]].append(ours)
    assert set(places) == set(tao_of.values())  # every model weight of TAO's is used
    shared = {key: ours for key, ours in places.items() if len(ours) > 1}
    assert sorted(shared) == ['model.head.fc_after.weight', 'model.head.fc_before.weight']
    assert all(len(ours) == ATTENTION_LAYERS for ours in shared.values())
    assert conversion.shared == {key.removeprefix('model.'): ours for key, ours in shared.items()}
    # what TAO's checkpoint does not hold: the fixed key points and the frozen batch norms'
    # counters, exactly
    counters = [k for k in conversion.state if k.endswith('num_batches_tracked')]
    points = [k for k in conversion.state if k.endswith('kps_generator.fix_scale')]
    assert sorted(conversion.filled) == sorted(counters + points)
    assert len(points) == KEY_POINT_SETS
    for key in RENAMED:
        assert RENAMED[key] in places[key]
    if camera_embed:
        assert places['model.head.layers.7.camera_encoder.3.weight'] == [
            'head.layers.7.camera_encoder.3.weight'
        ]
    # the model holds the values now
    assert torch.equal(
        model.head.layers[3].cls_layers[1].weight, state['model.head.layers.3.cls_layers.6.weight']
    )


def test_tao_head_weights_give_tao_first_decoder_outputs():
    """TAO's own head (fixture.pt: its weights, and its outputs on random feature maps of 3
    cameras) converted into ours: the first decoder (aggregation with camera embedding, FFN,
    norm, refinement) gives TAO's outputs, so the renaming keeps each weight's meaning."""
    fixture = torch.load(FIXTURE, weights_only=True)
    tao_head = fixture['config']['model']['head']
    first = tao_head['operation_order'].index('refine') + 1  # the first decoder's operations
    tao_weights = {}  # those of the first decoder: no attention yet
    for key, value in fixture['state_dict'].items():
        module, rest = key.removeprefix('model.head.').split('.', 1)
        if module == 'layers' and int(rest.split('.')[0]) >= first or module.startswith('fc_'):
            continue
        tao_weights[key] = value
    cfg = config('resnet_101', True, max_num_cams=4, implementation='grid_sample')
    head_cfg = cfg.model.head
    head_cfg.num_decoder = 1
    head_cfg.instance_bank.update(
        num_anchor=tao_head['instance_bank']['num_anchor'],
        num_temp_instances=tao_head['instance_bank']['num_temp_instances'],
        anchor=np.asarray(tao_head['instance_bank']['anchor'], np.float32),
    )
    with DefaultScope.overwrite_default_scope('mmsparse4d'):
        holder = nn.Module()  # the converter maps a whole model's keys; this one is a head
        holder.head = MODELS.build(head_cfg).eval()
    conversion = convert_state_dict(split_tao_state(tao_weights), holder)
    holder.load_state_dict(conversion.state, strict=True)
    frame, expected = fixture['inputs'][0], fixture['outputs'][0]['head']
    with torch.no_grad():
        out = holder.head(
            pack_feature_maps([level.float() for level in frame['feature_maps']]),
            frame['projection_mat'],
            frame['image_wh'],
            frame['timestamp'],
            ['scene'],
        )
    for name in ('classification', 'prediction', 'quality'):
        torch.testing.assert_close(out[name][0], expected[name][0], rtol=1e-4, atol=1e-4)


def test_prefix_variants_and_horizon_robotics_layout():
    state = tao_state('resnet_50', True)
    model = target_model('resnet_50', True)
    reference = convert_state_dict(split_tao_state(state), model).state
    bare = {k.removeprefix('model.'): v for k, v in state.items() if k.startswith('model.')}
    only_criterion_bank = {k: v for k, v in state.items() if '.head.instance_bank.' not in k}
    variants = {
        'TAO Lightning checkpoint (model. prefix)': [
            state,
            {k: v for k, v in state.items() if k.startswith('model.')},
            only_criterion_bank,  # the criterion's copy stands in
        ],
        'TAO layout without prefix': [bare],
    }
    for layout, states in variants.items():
        for variant in states:
            weights = split_tao_state(variant)
            assert weights.layout == layout
            converted = convert_state_dict(weights, model).state
            assert converted.keys() == reference.keys()
            assert all(
                converted[k] is reference[k] or torch.equal(converted[k], reference[k])
                for k in reference
            )
    # HorizonRobotics' mmdet3d layout: no prefix, its batch norms count batches: copied
    counters = {
        k.removesuffix('running_mean') + 'num_batches_tracked': torch.tensor(7)
        for k in bare
        if k.endswith('running_mean')
    }
    weights = split_tao_state({**bare, **counters})
    assert weights.layout == 'HorizonRobotics Sparse4D v3 (mmdet3d) layout'
    conversion = convert_state_dict(weights, model)
    assert all(int(conversion.state[k]) == 7 for k in counters)
    assert all(k.endswith('fix_scale') for k in conversion.filled)


def test_written_checkpoint_loads_weights_only_and_with_the_config(tmp_path):
    source, out = tmp_path / 'sparse4d_rn50.pth', tmp_path / 'converted.pth'
    state = compact_checkpoint(source)
    cfg, model = config('resnet_50', True), target_model('resnet_50', True)
    report = tao_to_mmsparse4d(source, cfg, out, model=model)
    assert report.anchors == "the checkpoint's (learned)"
    assert report.converted == len(state) - 2  # all but the criterion's copies
    written = torch.load(out, weights_only=True)
    anchors = written['state_dict'][ANCHOR_KEY]
    assert torch.equal(anchors, state['model.head.instance_bank.anchor'])
    meta = written['meta']
    assert meta['dataset_meta'] == {'classes': SPEC_CLASSES}
    assert Config.fromstring(meta['cfg'], '.py').model.head.refine_layer.velocity_residual is False
    conversion = meta['tao_conversion']
    assert conversion['source'] == source.name and conversion['epoch'] == 4
    assert conversion['dropped'] == KEYS['criterion_keys']
    # what TAO's file lacks: the config's key points, the frozen batch norms' counters at 0
    filled = written['state_dict']
    assert torch.equal(
        filled['head.layers.35.kps_generator.fix_scale'], torch.tensor(DEFAULT_FIXED_POINTS)
    )
    assert int(filled['img_backbone.layer3.5.bn1.num_batches_tracked']) == 0
    # tools/test.py's load: strict, then the settings the weights were trained under
    load_fitting_checkpoint(model, out, cfg)
    cfg.model.head.refine_layer.velocity_residual = True
    with pytest.raises(InputError, match='velocity_residual=False'):
        load_fitting_checkpoint(model, out, cfg)


def test_anchors_file_only_for_a_checkpoint_without_anchors(tmp_path):
    model = target_model('resnet_50', True)
    cfg = config('resnet_50', True)
    source, out = tmp_path / 'tao.pth', tmp_path / 'out.pth'
    kmeans = np.random.default_rng(0).normal(size=(900, 11)).astype(np.float32)
    anchors_file = tmp_path / 'anchor_init_kmeans900.npy'
    np.save(anchors_file, kmeans)
    compact_checkpoint(source, anchors=False)
    with pytest.raises(InputError, match='holds no head.instance_bank.anchor: give the k-means'):
        tao_to_mmsparse4d(source, cfg, out, model=model)
    assert not out.exists()
    report = tao_to_mmsparse4d(source, cfg, out, anchors_file, model=model)
    assert report.anchors == f'from {anchors_file}'
    written = torch.load(out, weights_only=True)['state_dict'][ANCHOR_KEY]
    assert torch.equal(written, torch.from_numpy(kmeans))
    # with anchors in the checkpoint, those (learned) are kept; the file is compared
    learned = compact_checkpoint(source)['model.head.instance_bank.anchor']
    report = tao_to_mmsparse4d(source, cfg, out, anchors_file, model=model)
    assert report.anchors.startswith("the checkpoint's (learned), at most")
    assert torch.equal(torch.load(out, weights_only=True)['state_dict'][ANCHOR_KEY], learned)
    np.save(anchors_file, kmeans[:300])
    with pytest.raises(InputError, match=r'anchors of shape \(300, 11\), head.instance_bank'):
        tao_to_mmsparse4d(source, cfg, out, anchors_file, model=model)


def _refusal(state, model, name='cfg.py', classes=()) -> str:
    with pytest.raises(InputError) as refused:
        convert_state_dict(split_tao_state(state), model, name, classes, 'tao.pth')
    message = str(refused.value)
    assert '\n' not in message and message.startswith('tao.pth: ')
    return message.removeprefix('tao.pth: ')


def test_refusals_name_the_key_and_both_shapes():
    state = tao_state('resnet_50', True)
    seven = tuple(
        Config.fromfile(
            str(REPO_ROOT / 'configs/sparse4d' / CONFIGS['resnet_50', True])
        ).class_names
    )
    seven_classes = target_model('resnet_50', True, seven, device='meta')
    assert _refusal(state, seven_classes, classes=seven) == (
        'model.head.layers.3.cls_layers.6.weight has shape (4, 256) in the checkpoint '
        '(4 classes), head.layers.3.cls_layers.1.weight of cfg.py has (7, 256) (7 classes: '
        f"{', '.join(seven)}): give a config with the checkpoint's classes, in its order"
    )
    on_vs_off = _refusal(state, target_model('resnet_50', False, device='meta'))
    assert on_vs_off.startswith(
        'model.head.layers.0.weights_fc.weight has shape (416, 256) in the checkpoint (camera '
        'embedding on), head.layers.0.weights_fc.weight of cfg.py has (8320, 256) (camera '
        'embedding off, max_num_cams 20; 416 weights per camera = 8 groups x 4 levels x 13 '
        'points)'
    )
    off = tao_state('resnet_50', False)
    assert (
        'has shape (8320, 256) in the checkpoint (camera embedding off, 20 camera slots), '
        'head.layers.0.weights_fc.weight of cfg.py has (416, 256) (camera embedding on;'
        in _refusal(off, target_model('resnet_50', True, device='meta'))
    )
    assert (
        '(camera embedding off, 20 camera slots), head.layers.0.weights_fc.weight of cfg.py '
        'has (4160, 256) (camera embedding off, max_num_cams 10;'
        in _refusal(off, target_model('resnet_50', False, max_num_cams=10, device='meta'))
    )

    model = target_model('resnet_50', True, device='meta')
    missing = {k: v for k, v in state.items() if k != 'model.head.layers.4.attn.in_proj_weight'}
    assert _refusal(missing, model) == (
        'the checkpoint lacks model.head.layers.4.attn.in_proj_weight (for '
        'head.layers.4.attention.in_proj_weight of cfg.py, shape (1536, 512))'
    )
    shared = {k: v for k, v in state.items() if k != 'model.head.fc_before.weight'}
    assert _refusal(shared, model).startswith(
        'the checkpoint lacks model.head.fc_before.weight (for head.layers.4.fc_before.weight '
        'of cfg.py, shape (512, 256)) and 9 more'
    )
    reid = {**state, 'model.head.bnneck.classifier.weight': torch.zeros(70, 256)}
    assert _refusal(reid, model) == (
        'the checkpoint has weights the model of cfg.py has no place for: '
        "model.head.bnneck.classifier.weight (70, 256): TAO's re-identification branch "
        '(use_reid_sampling) is not converted'
    )
    ours = convert_state_dict(split_tao_state(state), target_model('resnet_50', True)).state
    assert _refusal(ours, model).startswith('already an mmsparse4d checkpoint (it has head.')
    anchors = {**state, 'model.head.instance_bank.anchor': torch.zeros(300, 11)}
    assert _refusal(anchors, model) == (
        'model.head.instance_bank.anchor has shape (300, 11) in the checkpoint, '
        'head.instance_bank.anchor of cfg.py has (900, 11)'
    )


def test_cli_refuses_in_one_line_and_writes_nothing(tmp_path):
    source, out = tmp_path / 'sparse4d_rn50.pth', tmp_path / 'out.pth'
    compact_checkpoint(source)  # the TAO spec's 4 classes; the config has 7
    done = run_repo_tool(
        'model_converters/tao_to_mmsparse4d.py',
        source,
        REPO_ROOT / 'configs/sparse4d' / CONFIGS['resnet_50', True],
        out,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f'tao_to_mmsparse4d: {source}: model.head.layers.3.cls_layers.6.weight has shape '
        '(4, 256) in the checkpoint (4 classes), head.layers.3.cls_layers.1.weight of '
        'sparse4d_tao_r50_1408x512.py has (7, 256)'
    )
    assert not out.exists()
